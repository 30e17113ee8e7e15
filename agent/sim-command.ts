import { ACTOR_FAULTS } from '../sim/actor-faults.ts';
import { SCENARIOS } from '../sim/scenarios/index.ts';
import { type SimReport, runSimulation } from '../sim/runner.ts';
import { UsageError, parseDuration } from './cli-args.ts';

export interface SimRunFlags {
  readonly scenario: string;
  readonly nodes?: string;
  readonly seed?: string;
  readonly seeds?: string;
  readonly duration?: string;
  /** How many members vote (default: the product's). */
  readonly voters?: string;
  readonly json: boolean;
  readonly checkDeterminism: boolean;
  readonly faults: readonly string[];
}

const MAX_NODES = 2_000;
const MAX_SEEDS = 10_000;
/** Test-only faults that show an invariant failing: two singletons at once; the task and pool actors blind to their records. */
const TEST_FAULTS: readonly string[] = ['allow-duplicate-singletons', ...ACTOR_FAULTS];

/** `powernode sim list`: the scenarios, one a line. */
export function simList(json: boolean, out: (line: string) => void): number {
  if (json) out(JSON.stringify({ scenarios: SCENARIOS.map((s) => ({ name: s.name, description: s.description })) }));
  else for (const s of SCENARIOS) out(`${s.name.padEnd(16)} ${s.description}`);
  return 0;
}

/** Parses `A..B` (or one number) into seeds. */
function seedRange(text: string): number[] {
  const match = /^(\d+)(?:\.\.(\d+))?$/.exec(text);
  if (match === null) throw new UsageError(`--seeds takes a range such as 1..500, not ${JSON.stringify(text)}`);
  const from = Number(match[1]);
  const to = Number(match[2] ?? match[1]);
  if (to < from || to - from + 1 > MAX_SEEDS) throw new UsageError(`--seeds takes at most ${MAX_SEEDS} seeds, first to last`);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function positiveInt(text: string | undefined, name: string, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new UsageError(`--${name} takes a whole number from 1 to ${max}`);
  return Number(text);
}

/**
 * `powernode sim run`: one seed (optionally twice, comparing trace hashes), or a swarm of seeds
 * reported by seed. Exits 1 when an invariant fails or a run is not deterministic, printing the
 * command that replays the failing seed.
 */
export async function simRun(flags: SimRunFlags, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  if (!SCENARIOS.some((s) => s.name === flags.scenario)) throw new UsageError(`no scenario named ${flags.scenario}: see powernode sim list`);
  for (const fault of flags.faults) if (!TEST_FAULTS.includes(fault)) throw new UsageError(`--fault takes one of ${TEST_FAULTS.join(', ')}`);
  if (flags.seed !== undefined && flags.seeds !== undefined) throw new UsageError('give --seed or --seeds, not both');
  const nodes = positiveInt(flags.nodes, 'nodes', 10, MAX_NODES);
  const durationMs = flags.duration === undefined ? 120_000 : parseDuration(flags.duration);
  const voters = flags.voters === undefined ? undefined : positiveInt(flags.voters, 'voters', 0, MAX_NODES);
  const seeds = flags.seeds === undefined ? [positiveInt(flags.seed, 'seed', 1, Number.MAX_SAFE_INTEGER)] : seedRange(flags.seeds);
  const replay = (seed: number): string =>
    `npx powernode sim run ${flags.scenario} --nodes ${nodes} --seed ${seed} --duration ${durationMs}ms${voters === undefined ? '' : ` --voters ${voters}`}${flags.faults.map((f) => ` --fault ${f}`).join('')}`;
  const failures: Array<{ seed: number; failed: string[] }> = [];
  for (const seed of seeds) {
    const options = { scenario: flags.scenario, nodes, seed, durationMs, faults: flags.faults, ...(voters === undefined ? {} : { voters }) };
    const report = await runSimulation(options);
    let deterministic: boolean | undefined;
    if (flags.checkDeterminism) deterministic = (await runSimulation(options)).traceHash === report.traceHash;
    const failed = report.invariants.filter((i) => !i.ok).map((i) => i.name);
    if (deterministic === false) failed.push('determinism');
    if (failed.length > 0) failures.push({ seed, failed });
    if (seeds.length === 1) {
      out(flags.json ? JSON.stringify({ ...report, ...(deterministic === undefined ? {} : { deterministic }) }) : formatReport(report, deterministic));
      if (failed.length > 0) err(`powernode: invariants failed (${failed.join(', ')}); replay with: ${replay(seed)}`);
    } else if (!flags.json) {
      out(`seed ${seed}: ${failed.length === 0 ? 'ok' : `FAILED ${failed.join(', ')}`} (${report.wallMs} ms)`);
    }
  }
  if (seeds.length > 1) {
    if (flags.json) out(JSON.stringify({ scenario: flags.scenario, nodes, seeds: seeds.length, failures }));
    for (const failure of failures) err(`powernode: seed ${failure.seed} failed ${failure.failed.join(', ')}; replay with: ${replay(failure.seed)}`);
  }
  return failures.length === 0 ? 0 : 1;
}

function formatReport(report: SimReport, deterministic: boolean | undefined): string {
  const lines = [
    `${report.scenario}: ${report.nodes} nodes, seed ${report.seed}, ${Math.round(report.simulatedMs / 1000)} s simulated in ${(report.wallMs / 1000).toFixed(1)} s`,
    ...report.invariants.map((i) => `  ${i.ok ? 'ok  ' : 'FAIL'} ${i.name}: ${i.detail}`),
    `  detection p99 ${report.metrics.detectionMsP99 ?? '-'} ms, failover p99 ${report.metrics.failoverMsP99 ?? '-'} ms, convergence ${report.metrics.convergenceMsP99 ?? '-'} ms, ${report.metrics.messages} messages, ${report.metrics.bytes} bytes`,
    `  trace ${report.traceHash}${deterministic === undefined ? '' : deterministic ? ' (the same on a second run)' : ' (DIFFERENT on a second run)'}`,
  ];
  return lines.join('\n');
}
