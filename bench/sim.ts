// Simulator speed and memory (issue 5), and the fleet's figures it measures: wall time for
// simulated time by fleet size and scenario; detection, failover, convergence and write
// visibility p50/p99, side by side with the published defaults of memberlist, Akka and Orleans.
// Run: npm run bench:sim                       (sizes 10, 25, 50; steady and leader-kill, 60 s)
//      SIZES=100 SCENARIOS=steady,leader-kill,leader-kill-lossy npm run bench:sim
//      SIZES=100 SCENARIOS=steady DURATION_MS=600000 npm run bench:sim
// Prints one JSON object (progress on stderr).
import { loadavg } from 'node:os';
import { runSimulation } from '../sim/runner.ts';

const SIZES = (process.env['SIZES'] ?? '10,25,50').split(',').map(Number);
const SCENARIOS = (process.env['SCENARIOS'] ?? 'steady,leader-kill').split(',');
const DURATION_MS = Number(process.env['DURATION_MS'] ?? 60_000);
const SEED = Number(process.env['SEED'] ?? 1);
/** REPLICATED=0: only the founder's documents at the start, the rest replicated (SimFleetOptions.replicatedStart). */
const REPLICATED = process.env['REPLICATED'] !== '0';

/** Published defaults of peer systems (../shared/reference/anchors.md), for the same figures. */
const ANCHORS = {
  detection: {
    memberlist: 'suspicion timeout 4*max(1,log10 N) s: 8 s at 100 nodes, 12 s at 1,000 (after probe 1 s, timeout 500 ms)',
    akka: 'unreachable after the phi detector, downed by SBR ~20 s later (default failover ~25 s at 10 nodes, ~45 s)',
    orleans: '~15 s to declare a silo dead',
  },
  failover: {
    akka: 'cluster singleton ~25-45 s by default',
    orleans: 'detection (~15 s) plus re-activation on first call',
  },
  convergence: {
    memberlist: 'gossip 200 ms fanout 3: 99.9 % informed in ~2 s at 1,000 (3.8 s with 50 % loss); push/pull every 30 s',
  },
};

const results: Array<Record<string, unknown>> = [];
for (const nodes of SIZES) {
  for (const scenario of SCENARIOS) {
    const cpuBefore = process.cpuUsage();
    const report = await runSimulation({ scenario, nodes, seed: SEED, durationMs: DURATION_MS, ...(REPLICATED ? {} : { replicatedStart: false }) });
    const cpu = process.cpuUsage(cpuBefore);
    // CPU time as well as wall time: the machine is shared, and wall time grows with its load.
    const cpuS = Math.round((cpu.user + cpu.system) / 1e5) / 10;
    const rssMb = Math.round(process.memoryUsage().rss / 1e6);
    const failed = report.invariants.filter((i) => !i.ok).map((i) => i.name);
    const m = report.metrics;
    results.push({
      scenario,
      nodes,
      simulatedS: Math.round(report.simulatedMs / 1000),
      wallS: Math.round(report.wallMs / 100) / 10,
      speedup: Math.round((report.simulatedMs / report.wallMs) * 10) / 10,
      cpuS,
      load: loadavg().map((l) => Math.round(l * 10) / 10),
      rssMb,
      detectionMs: { p50: m.detectionMsP50, p99: m.detectionMsP99, samples: m.samples.detection },
      failoverMs: { p50: m.failoverMsP50, p99: m.failoverMsP99, samples: m.samples.failover },
      convergenceMs: { p99: m.convergenceMsP99, samples: m.samples.convergence },
      writeVisibleMs: { p50: m.writeVisibleMsP50, p99: m.writeVisibleMsP99, samples: m.samples.writeVisible },
      messages: m.messages,
      bytes: m.bytes,
      invariantsFailed: failed,
    });
    process.stderr.write(`${scenario} ${nodes} nodes: ${report.simulatedMs} ms simulated in ${report.wallMs} ms wall (${cpuS} s cpu, load ${loadavg()[0]!.toFixed(1)}), rss ${rssMb} MB, detection p50/p99 ${m.detectionMsP50}/${m.detectionMsP99}, failover ${m.failoverMsP50}/${m.failoverMsP99}, convergence ${m.convergenceMsP99}, write visible ${m.writeVisibleMsP50}/${m.writeVisibleMsP99}${failed.length > 0 ? `, FAILED ${failed.join(',')}` : ''}\n`);
  }
}
process.stdout.write(
  `${JSON.stringify({ benchmark: 'sim', durationMs: DURATION_MS, seed: SEED, targets: { '100 nodes': '≥ 100× real time', '1,000 nodes × 10 min': '≤ 60 s wall, ≤ 4 GB' }, anchors: ANCHORS, results }, null, 1)}\n`,
);
