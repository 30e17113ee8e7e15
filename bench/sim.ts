// Simulator speed and memory (issue 5): wall time for simulated time, by fleet size and scenario.
// Run: npm run bench:sim                       (sizes 10, 25, 50; steady and leader-kill, 60 s)
//      SIZES=100 SCENARIOS=steady DURATION_MS=600000 npm run bench:sim
// Prints one JSON object.
import { runSimulation } from '../sim/runner.ts';

const SIZES = (process.env['SIZES'] ?? '10,25,50').split(',').map(Number);
const SCENARIOS = (process.env['SCENARIOS'] ?? 'steady,leader-kill').split(',');
const DURATION_MS = Number(process.env['DURATION_MS'] ?? 60_000);

const results: Array<Record<string, unknown>> = [];
for (const nodes of SIZES) {
  for (const scenario of SCENARIOS) {
    const report = await runSimulation({ scenario, nodes, seed: 1, durationMs: DURATION_MS });
    const rssMb = Math.round(process.memoryUsage().rss / 1e6);
    const failed = report.invariants.filter((i) => !i.ok).map((i) => i.name);
    results.push({
      scenario,
      nodes,
      simulatedS: Math.round(report.simulatedMs / 1000),
      wallS: Math.round(report.wallMs / 100) / 10,
      speedup: Math.round((report.simulatedMs / report.wallMs) * 10) / 10,
      rssMb,
      ...report.metrics,
      invariantsFailed: failed,
    });
    process.stderr.write(`${scenario} ${nodes} nodes: ${report.simulatedMs} ms simulated in ${report.wallMs} ms wall, rss ${rssMb} MB${failed.length > 0 ? `, FAILED ${failed.join(',')}` : ''}\n`);
  }
}
process.stdout.write(`${JSON.stringify({ benchmark: 'sim', durationMs: DURATION_MS, targets: { '100 nodes': '≥ 100× real time', '1,000 nodes × 10 min': '≤ 60 s wall, ≤ 4 GB' }, results }, null, 1)}\n`);
