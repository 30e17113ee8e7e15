import { SimFleet } from '../../sim/fleet.ts';
const fleet = await SimFleet.create({ seed: 1, nodes: Number(process.env['N'] ?? 300) });
for (let i = 0; i < Number(process.env["STEPS"] ?? 6); i++) {
  const t = performance.now();
  await fleet.run(Number(process.env["STEP_MS"] ?? 5_000)); if (globalThis.gc) globalThis.gc();
  console.log(`t=${(i + 1) * 5}s wall ${(performance.now() - t).toFixed(0)} ms heap ${fleet.clock.heapSize} pending ${fleet.clock.pending} fired ${fleet.clock.fired} heapUsed ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
}
process.exit(0);
