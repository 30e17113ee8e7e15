// Simulator speed and memory (issue 5), and the fleet's figures it measures: wall time for
// simulated time by fleet size and scenario; detection, failover, convergence and write
// visibility p50/p99, side by side with the published defaults of memberlist, Akka and Orleans.
// Run: npm run bench:sim                       (sizes 10, 25, 50; steady and leader-kill, 60 s)
//      SIZES=100 SCENARIOS=steady,leader-kill,leader-kill-lossy npm run bench:sim
//      SIZES=100 SCENARIOS=steady DURATION_MS=600000 npm run bench:sim
//      SIZES=1000 PHASES=1000,1000 npm run bench:sim   (phases: see below)
// Prints one JSON object (progress on stderr).
import { loadavg } from 'node:os';
import { SimFleet } from '../sim/fleet.ts';
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

/**
 * PHASES=ms,ms,...: instead of scenarios, what each phase of a plain fleet costs (no faults, no
 * invariants): creating it, then each run of that many simulated ms, with wall and CPU time, RSS,
 * timers fired, virtual instants and frames sent in it. Where the time goes, phase by phase.
 */
const PHASES = process.env['PHASES']?.split(',').map(Number);

async function phases(nodes: number, runs: readonly number[]): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  let wall = performance.now();
  let cpu = process.cpuUsage();
  const measure = (phase: string, extra: Record<string, unknown>): void => {
    const spent = process.cpuUsage(cpu);
    const row = { nodes, phase, wallS: Math.round((performance.now() - wall) / 100) / 10, cpuS: Math.round((spent.user + spent.system) / 1e5) / 10, rssMb: Math.round(process.memoryUsage().rss / 1e6), load: loadavg().map((l) => Math.round(l * 10) / 10), ...extra };
    out.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
    wall = performance.now();
    cpu = process.cpuUsage();
  };
  const fleet = await SimFleet.create({ seed: SEED, nodes, ...(REPLICATED ? {} : { replicatedStart: false }) });
  measure('create', {});
  for (const ms of runs) {
    const fired = fleet.clock.fired;
    const messages = fleet.network.messages;
    const byProtocol = new Map(fleet.network.messagesByProtocol);
    let instants = 0;
    await fleet.run(ms, () => instants++);
    const protocols = Object.fromEntries([...fleet.network.messagesByProtocol].map(([protocol, count]) => [protocol, count - (byProtocol.get(protocol) ?? 0)]));
    measure(`run ${ms} ms`, { timers: fleet.clock.fired - fired, instants, messages: fleet.network.messages - messages, protocols, openStreams: fleet.network.openStreams });
  }
  return out;
}

const results: Array<Record<string, unknown>> = [];
if (PHASES !== undefined) {
  for (const nodes of SIZES) results.push(...(await phases(nodes, PHASES)));
  process.stdout.write(`${JSON.stringify({ benchmark: 'sim-phases', seed: SEED, replicatedStart: REPLICATED, results }, null, 1)}\n`);
  process.exit(0);
}
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
