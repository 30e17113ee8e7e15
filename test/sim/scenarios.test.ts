import { describe, expect, it } from 'vitest';
import { SimFleet } from '../../sim/fleet.ts';
import { runSimulation } from '../../sim/runner.ts';
import { SCENARIOS } from '../../sim/scenarios/index.ts';

const NODES = 5;
const DURATION_MS = 60_000;
const SEEDS = [1, 2];
/**
 * The task and pool scenarios run the dispatcher, task runner and pool actors on every node and
 * cost two to three times a core scenario's wall time, so the suite runs one seed of each for 45 s
 * (one round of faults, then the 30 s quiet tail), and the two runs that show their invariants
 * failing; `powernode sim run task-failover --seeds 1..100` is the swarm (docs/SIMULATION.md
 * §Tasks and pools).
 */
const SEEDS_OF: Readonly<Record<string, readonly number[]>> = { 'task-failover': [1], 'pool-claims': [1] };
const DURATION_OF: Readonly<Record<string, number>> = { 'task-failover': 45_000, 'pool-claims': 45_000 };

/** The failing invariants of a report, with the seed to replay, for readable failures. */
const failures = (report: Awaited<ReturnType<typeof runSimulation>>): string[] =>
  report.invariants.filter((i) => !i.ok).map((i) => `seed ${report.seed} ${report.scenario}: ${i.name}: ${i.detail}`);

/**
 * leader-kill-lossy found two owners of the sensor at once, with one epoch, when lost frames made
 * members flap (docs/SIMULATION.md §What it found); ownership promises fixed it. These are seeds
 * the code before the fix failed at this size and duration, run beside the suite's own.
 */
const LOSSY_LEADER_KILL_SEEDS = [24, 33];

describe('simulated fleets: every scenario keeps every invariant', () => {
  for (const scenario of SCENARIOS) {
    for (const seed of SEEDS_OF[scenario.name] ?? SEEDS) {
      it(`${scenario.name}, seed ${seed}`, async () => {
        const durationMs = DURATION_OF[scenario.name] ?? DURATION_MS;
        const report = await runSimulation({ scenario: scenario.name, nodes: NODES, seed, durationMs });
        expect(failures(report)).toEqual([]);
        expect(report.simulatedMs).toBeGreaterThanOrEqual(durationMs);
      }, 120_000);
    }
  }
});

describe('simulated fleets: leader-kill-lossy, seeds that once ran two owners of one singleton', () => {
  for (const seed of LOSSY_LEADER_KILL_SEEDS) {
    it(`seed ${seed}`, async () => {
      const report = await runSimulation({ scenario: 'leader-kill-lossy', nodes: NODES, seed, durationMs: DURATION_MS });
      expect(failures(report)).toEqual([]);
    }, 120_000);
  }
});

describe('simulated fleets where fewer members vote than there are (docs/PLACEMENT.md §Voters)', () => {
  // Seven nodes, of which the three admitted first vote: owners that vote and owners that do not are killed.
  for (const scenario of ['leader-kill', 'partition-heal', 'leader-kill-lossy']) {
    it(`${scenario}, seven nodes, three voters`, async () => {
      const report = await runSimulation({ scenario, nodes: 7, seed: 1, durationMs: DURATION_MS, voters: 3 });
      expect(failures(report)).toEqual([]);
      if (scenario !== 'partition-heal') expect(report.metrics.samples.failover).toBeGreaterThan(0);
    }, 120_000);
  }
});

describe('simulator determinism and its checks', () => {
  it('gives the same trace for the same seed and a different one for another', async () => {
    const run = (seed: number) => runSimulation({ scenario: 'churn', nodes: NODES, seed, durationMs: 40_000 });
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.traceHash).not.toBe(c.traceHash);
  }, 120_000);

  it('measures detection, failover and how soon acknowledged writes reach every live node', async () => {
    const report = await runSimulation({ scenario: 'leader-kill', nodes: NODES, seed: 1, durationMs: 60_000 });
    const m = report.metrics;
    expect(m.samples.detection).toBeGreaterThan(0);
    expect(m.samples.writeVisible).toBeGreaterThanOrEqual(2);
    expect(m.detectionMsP50!).toBeLessThanOrEqual(m.detectionMsP99!);
    expect(m.failoverMsP50!).toBeLessThanOrEqual(m.failoverMsP99!);
    // SWIM's suspicion lasts 1.5-3 s: a crash is never seen sooner, and is seen within a few seconds.
    expect(m.detectionMsP50!).toBeGreaterThanOrEqual(1_000);
    expect(m.detectionMsP99!).toBeLessThan(10_000);
    expect(m.writeVisibleMsP50!).toBeLessThanOrEqual(m.writeVisibleMsP99!);
    expect(m.writeVisibleMsP99!).toBeLessThan(5_000);
  }, 120_000);

  it('catches a task started twice when a test-only fault hides the runs a node recorded from its task runner, and names the seed', async () => {
    // With the runs hidden, a node restarted under a running task neither closes that run nor
    // refuses the renewal the dispatcher sends it, so it starts the command again.
    // 45 s leave one round of faults (a 30 s quiet tail follows): enough for this seed's dispatcher owner to die under a running task.
    const report = await runSimulation({ scenario: 'task-failover', nodes: NODES, seed: 1, durationMs: 45_000, faults: ['forget-task-runs'] });
    const once = report.invariants.find((i) => i.name === 'task-starts-once')!;
    expect(once.ok).toBe(false);
    expect(once.detail).toMatch(/task t-\d+ started 2 times: n\d at \d+ ms \(pid \d+, process start 1\), n\d at \d+ ms \(pid \d+, process start 2\)/);
    expect(failures(report).some((f) => f.startsWith('seed 1 task-failover: task-starts-once'))).toBe(true);
  }, 120_000);

  it('catches a pool member handed out to two claims when a test-only fault hides the claim records from the pools owner and the members', async () => {
    const report = await runSimulation({ scenario: 'pool-claims', nodes: NODES, seed: 1, durationMs: 45_000, faults: ['forget-pool-claims'] });
    const member = report.invariants.find((i) => i.name === 'pool-member-one-claim')!;
    expect(member.ok).toBe(false);
    expect(member.detail).toMatch(/n\d is held by claim c-\d+ \(.*\) while c-\d+ had not ended/);
    expect(failures(report).some((f) => f.startsWith('seed 1 pool-claims: pool-member-one-claim'))).toBe(true);
  }, 120_000);

  it('catches two owners of one singleton when a test-only fault lets them run, and names the seed', async () => {
    const report = await runSimulation({ scenario: 'partition-heal', nodes: NODES, seed: 3, durationMs: 60_000, faults: ['allow-duplicate-singletons'] });
    const safety = report.invariants.find((i) => i.name === 'singleton-safety')!;
    expect(safety.ok).toBe(false);
    expect(safety.detail).toMatch(/both ran sensor\.instance-silence/);
    expect(report.seed).toBe(3);
  }, 120_000);
});

describe('replication across repeated restarts', () => {
  // leader-kill kills and restarts the sensor's owner every 12 s. A restarted node's first sync
  // message carries a bloom filter of what it holds, and now and then a false positive makes a
  // peer send a change without the one it depends on (docs/SIMULATION.md, the sync storm). With
  // seed 9, before sessions kept such changes, six sessions had to start a document over.
  it('converges by sync alone: no session starts a document over with a full copy', async () => {
    const fleets = new Set<SimFleet>();
    const start = SimFleet.prototype.start;
    SimFleet.prototype.start = function (this: SimFleet, index: number) {
      fleets.add(this);
      return start.call(this, index);
    };
    let report: Awaited<ReturnType<typeof runSimulation>>;
    try {
      report = await runSimulation({ scenario: 'leader-kill', nodes: NODES, seed: 9, durationMs: 120_000 });
    } finally {
      SimFleet.prototype.start = start;
    }
    expect(failures(report)).toEqual([]);
    const [fleet] = [...fleets];
    const startOvers = fleet!.nodes.flatMap((node) => node.log.problems.filter((p) => p.message.includes('asking the peer for a full copy')).map((p) => `n${node.index}: ${p.message}`));
    expect(startOvers).toEqual([]);
  }, 120_000);
});
