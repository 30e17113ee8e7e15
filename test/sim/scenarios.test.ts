import { describe, expect, it } from 'vitest';
import { runSimulation } from '../../sim/runner.ts';
import { SCENARIOS } from '../../sim/scenarios/index.ts';

const NODES = 5;
const DURATION_MS = 60_000;
const SEEDS = [1, 2];

/** The failing invariants of a report, with the seed to replay, for readable failures. */
const failures = (report: Awaited<ReturnType<typeof runSimulation>>): string[] =>
  report.invariants.filter((i) => !i.ok).map((i) => `seed ${report.seed} ${report.scenario}: ${i.name}: ${i.detail}`);

describe('simulated fleets: every scenario keeps every invariant', () => {
  for (const scenario of SCENARIOS) {
    for (const seed of SEEDS) {
      it(`${scenario.name}, seed ${seed}`, async () => {
        const report = await runSimulation({ scenario: scenario.name, nodes: NODES, seed, durationMs: DURATION_MS });
        expect(failures(report)).toEqual([]);
        expect(report.simulatedMs).toBeGreaterThanOrEqual(DURATION_MS);
      }, 120_000);
    }
  }
});

describe('simulator determinism and its checks', () => {
  it('gives the same trace for the same seed and a different one for another', async () => {
    const run = (seed: number) => runSimulation({ scenario: 'churn', nodes: NODES, seed, durationMs: 40_000 });
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.traceHash).not.toBe(c.traceHash);
  }, 120_000);

  it('catches two owners of one singleton when a test-only fault lets them run, and names the seed', async () => {
    const report = await runSimulation({ scenario: 'partition-heal', nodes: NODES, seed: 3, durationMs: 60_000, faults: ['allow-duplicate-singletons'] });
    const safety = report.invariants.find((i) => i.name === 'singleton-safety')!;
    expect(safety.ok).toBe(false);
    expect(safety.detail).toMatch(/both ran sensor\.instance-silence/);
    expect(report.seed).toBe(3);
  }, 120_000);
});
