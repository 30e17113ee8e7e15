// Pool claim latency on a loopback fleet of real node processes (issue 7: "Pool claim p99 <= 100 ms").
// Run: npm run bench:pool-claim                 5 processes, 200 claims (CLAIMS=N to change)
// Every node is labelled pool=bench. Claims go through the nodes in turn (so most are asked of a
// node that is not the owner of control.pools); each is timed from the API request to the answer,
// which comes after the member and then the owner recorded it durably. After each claim the member
// is given back for reuse (not timed), so it is ready again. Then rounds of concurrent claims, one
// through every node at once. Ports: PORT_BASE..+4 (API) and +5..+9 (libp2p), PORT_BASE picked at
// random in 7700-7989 unless set; data under /tmp/pl-bench-*.
// Prints one JSON object of figures: latencies, the fleet's CPU time (idle per second, per claim with
// its give-back), the sync messages and bytes the fleet sent per claim, each node's CPU time and
// write syscalls per claim (idle included, the owner first). On stderr: each node's pid
// and peer id (PROFILE_DIR's profiles are named by pid) and the wall-clock start of each phase.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiClient } from '../agent/api-client.ts';
import { cli, eventually } from '../test/helpers/cli-fleet.ts';

const NODES = 5;
const CLAIMS = Number(process.env['CLAIMS'] ?? 200);
const ROUNDS = Number(process.env['ROUNDS'] ?? 20);
// PACE_MS=N starts claim n at N·n ms after the first (open loop; 0: each right after the last give-back).
const PACE_MS = Number(process.env['PACE_MS'] ?? 0);
// The machine is shared: a random base keeps two runs (or another engineer's fleet) apart.
// BENCH_LOG_DIR=DIR keeps every node's log (DIR/n0.log ...), e.g. with POWERNODE_LOG=debug.
const LOG_DIR = process.env['BENCH_LOG_DIR'];
const PORT_BASE = Number(process.env['PORT_BASE'] ?? 7700 + Math.floor(Math.random() * 290));
const stderrs: string[] = [];
const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'agent', 'bin', 'powernode.mjs');

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const summary = (values: readonly number[]) =>
  values.length === 0 ? { samples: 0 } : { p50: +percentile(values, 50).toFixed(1), p99: +percentile(values, 99).toFixed(1), max: +Math.max(...values).toFixed(1), samples: values.length };

// PROFILE_DIR=DIR runs every node with --cpu-prof into DIR and stops them with SIGTERM (a clean
// stop writes the profiles; the default is SIGKILL, which is quicker).
const PROFILE_DIR = process.env['PROFILE_DIR'];
const STOP_SIGNAL = PROFILE_DIR === undefined ? 'SIGKILL' : 'SIGTERM';
const NODE_ENV = PROFILE_DIR === undefined ? process.env : { ...process.env, POWERNODE_NODE_FLAGS: `--max-semi-space-size=1 --cpu-prof --cpu-prof-dir=${PROFILE_DIR}` };
const IDLE_MS = Number(process.env['IDLE_MS'] ?? 10_000);
const TICKS_PER_S = 100;

/** CPU time (user + system) the node processes used so far, from /proc (Linux; 0 elsewhere). */
function fleetCpuMs(nodes: ReadonlyArray<{ child: ChildProcess }>): number {
  let ticks = 0;
  for (const { child } of nodes) {
    try {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return 0;
    }
  }
  return (ticks / TICKS_PER_S) * 1_000;
}

/** Each node's CPU time (ms) and write syscalls so far, from /proc (Linux; zeros elsewhere). */
function perNode(nodes: ReadonlyArray<{ child: ChildProcess }>): Array<{ cpuMs: number; writes: number }> {
  return nodes.map(({ child }) => {
    try {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const writes = /syscw: (\d+)/.exec(readFileSync(`/proc/${child.pid}/io`, 'utf8'))?.[1];
      return { cpuMs: ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_S) * 1_000, writes: Number(writes ?? 0) };
    } catch {
      return { cpuMs: 0, writes: 0 };
    }
  });
}

/** Starts `node start` on fixed ports and resolves with its ready line. */
async function startNode(dataDir: string, index: number, extra: readonly string[] = []): Promise<{ child: ChildProcess; api: string; peerId: string; spawnedAt: number }> {
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [BIN, 'node', 'start', '--data', dataDir, '--listen', `/ip4/127.0.0.1/tcp/${PORT_BASE + NODES + index}`, '--api', `127.0.0.1:${PORT_BASE + index}`, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT, env: NODE_ENV });
  let stderr = '';
  const logFile = LOG_DIR === undefined ? undefined : createWriteStream(join(LOG_DIR, `n${index}.log`), { flags: 'a' });
  child.stderr!.on('data', (chunk: Buffer) => {
    logFile?.write(chunk);
    stderr += chunk.toString();
    stderrs[index] = stderr.slice(-20_000);
  });
  return new Promise((resolveReady, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`node ${index} not ready in 30 s:\n${stderr}`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      clearTimeout(timer);
      const ready = JSON.parse(stdout.slice(0, newline)) as { api: string; peerId: string };
      resolveReady({ child, api: ready.api, peerId: ready.peerId, spawnedAt });
    });
    child.once('exit', (code) => reject(new Error(`node ${index} exited with ${code}:\n${stderr}`)));
  });
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'pl-bench-'));
  const nodes: Array<{ child: ChildProcess; api: string; peerId: string; spawnedAt: number }> = [];
  try {
    const init = JSON.parse((await cli(['fleet', 'init', '--data', join(root, 'n0')])).stdout) as { operatorKey: string };
    nodes.push(await startNode(join(root, 'n0'), 0));
    for (let i = 1; i < NODES; i++) {
      const token = (await cli(['token', 'create', '--api', nodes[0]!.api, '--key', init.operatorKey])).stdout.trim();
      nodes.push(await startNode(join(root, `n${i}`), i, ['--join', token, '--name', `n${i}`]));
    }
    const clients = await Promise.all(nodes.map((n) => ApiClient.create(n.api, init.operatorKey)));
    const key = ['--api', nodes[0]!.api, '--key', init.operatorKey];
    const poolFile = join(root, 'pool.json');
    await writeFile(poolFile, JSON.stringify({ name: 'bench', template: 'none', target: NODES, max: NODES }));
    if ((await cli(['pool', 'put', ...key, poolFile])).code !== 0) throw new Error('pool put failed');
    for (const n of nodes) if ((await cli(['label', 'set', ...key, '--node', n.peerId, 'pool=bench'])).code !== 0) throw new Error('label set failed');
    type Members = { pools: Array<{ name: string; members: Array<{ state: string }> }>; owner: { owner: string } | null };
    const ready = async (i: number): Promise<number> => (await clients[i]!.get<Members>('/api/v1/pools')).pools.find((p) => p.name === 'bench')?.members.filter((m) => m.state === 'ready').length ?? 0;
    for (let i = 0; i < NODES; i++) await eventually(async () => ((await ready(i)) === NODES ? true : undefined), 30_000, `all members ready on node ${i}`, 200);
    const owner = (await clients[0]!.get<Members>('/api/v1/pools')).owner?.owner;
    // Which profile is whose (PROFILE_DIR names them by pid), and when each phase began (wall clock, ms).
    process.stderr.write(`nodes ${JSON.stringify(nodes.map((n) => ({ pid: n.child.pid, peerId: n.peerId, spawnedAt: n.spawnedAt, owner: n.peerId === owner })))}\n`);
    const phase = (name: string): void => void process.stderr.write(`phase ${name} ${Date.now()}\n`);

    // A failed claim or give-back (the owner changing on a loaded machine) is counted, not fatal.
    const failures: Record<string, number> = {};
    const failed = (what: string, error: unknown): undefined => {
      const key = `${what} ${(error as { status?: number }).status ?? '?'}: ${String((error as Error).message).slice(0, 60)}`;
      failures[key] = (failures[key] ?? 0) + 1;
      return undefined;
    };
    const claim = async (i: number): Promise<{ ms: number; member: string } | undefined> => {
      const started = performance.now();
      try {
        const answer = await clients[i]!.post<{ member: string }>('/api/v1/pools/acquire', { pool: 'bench', for: 'bench' });
        return { ms: performance.now() - started, member: answer.member };
      } catch (error) {
        return failed('acquire', error);
      }
    };
    const giveBack = async (i: number, member: string | undefined): Promise<void> => {
      if (member === undefined) return;
      // Until it is given back the member is not ready: retry while the owner changes.
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await clients[i]!.post('/api/v1/pools/release', { pool: 'bench', member, reuse: true });
          return;
        } catch (error) {
          failed('release', error);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };

    // Warm-up: every node's first request opens its streams.
    for (let i = 0; i < NODES; i++) await giveBack(i, (await claim(i))?.member);
    // The fleet's CPU time, idle and then per claim (with its give-back): on a shared machine
    // latency follows the load, while CPU time per claim says what the fleet itself spends.
    phase('idle');
    const idleStarted = performance.now();
    const idleCpuStart = fleetCpuMs(nodes);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleCpuMsPerS = ((fleetCpuMs(nodes) - idleCpuStart) / (performance.now() - idleStarted)) * 1_000;
    const sequential: number[] = [];
    const viaOwner: number[] = [];
    phase('claims');
    // Sync messages the fleet sent (every node's sessions), to tell replication's share per claim.
    type Status = { peers: Array<{ messagesOut: number; bytesOut: number }> };
    const syncSent = async (): Promise<{ messages: number; bytes: number }> => {
      const all = await Promise.all(clients.map((c) => c.get<Status>('/api/v1/status')));
      return all.flatMap((s) => s.peers).reduce((sum, p) => ({ messages: sum.messages + p.messagesOut, bytes: sum.bytes + p.bytesOut }), { messages: 0, bytes: 0 });
    };
    const syncBefore = await syncSent();
    const claimsStarted = performance.now();
    const claimsCpuStart = fleetCpuMs(nodes);
    const nodesBefore = perNode(nodes);
    let stepCpuMs = claimsCpuStart;
    for (let n = 0; n < CLAIMS; n++) {
      const i = n % NODES;
      const wait = claimsStarted + n * PACE_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const claimed = await claim(i);
      if (claimed !== undefined) (nodes[i]!.peerId === owner ? viaOwner : sequential).push(claimed.ms);
      await giveBack(i, claimed?.member);
      if ((n + 1) % 50 === 0) {
        const cpuMs = fleetCpuMs(nodes);
        process.stderr.write(`${n + 1}/${CLAIMS} claims, ${Object.values(failures).reduce((a, b) => a + b, 0)} failures, fleet CPU ${Math.round((cpuMs - stepCpuMs) / 50)} ms a claim\n`);
        stepCpuMs = cpuMs;
      }
    }
    const claimsS = (performance.now() - claimsStarted) / 1_000;
    const cpuMsPerClaim = (fleetCpuMs(nodes) - claimsCpuStart - idleCpuMsPerS * claimsS) / CLAIMS;
    // Per node, idle included (the owner first): where the fleet's CPU time and socket writes go.
    const byNode = perNode(nodes)
      .map((after, i) => ({ owner: nodes[i]!.peerId === owner, cpuMs: Math.round((after.cpuMs - nodesBefore[i]!.cpuMs) / CLAIMS), writes: Math.round((after.writes - nodesBefore[i]!.writes) / CLAIMS) }))
      .sort((a, b) => Number(b.owner) - Number(a.owner));
    const syncAfter = await syncSent();
    phase('concurrent');
    const concurrent: number[] = [];
    let doubles = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all(nodes.map((_, i) => claim(i)));
      const got = answers.filter((a) => a !== undefined);
      concurrent.push(...got.map((a) => a.ms));
      if (new Set(got.map((a) => a.member)).size !== got.length) doubles++;
      await Promise.all(answers.map((a, i) => giveBack(i, a?.member)));
    }
    // DETAIL=1: each concurrent claim's latency in the order the rounds ran (a tail that grows with the rounds, or one that comes and goes).
    if (process.env['DETAIL'] !== undefined) process.stderr.write(`concurrent ${JSON.stringify(concurrent.map((ms) => Math.round(ms)))}\n`);
    phase('end');
    console.log(JSON.stringify({
      nodes: NODES,
      claimLatencyMs: { throughOtherNodes: summary(sequential), throughOwner: summary(viaOwner), concurrentOnePerNode: summary(concurrent) },
      fleetCpu: { idleMsPerS: Math.round(idleCpuMsPerS), msPerClaimAndGiveBack: Math.round(cpuMsPerClaim) },
      perNodePerClaimAndGiveBack: byNode,
      syncPerClaimAndGiveBack: { messages: Math.round((syncAfter.messages - syncBefore.messages) / CLAIMS), bytes: Math.round((syncAfter.bytes - syncBefore.bytes) / CLAIMS) },
      roundsWithADoubleClaim: doubles,
      failures,
      loadAverage: (await import('node:os')).loadavg().map((l) => +l.toFixed(1)),
      targetP99Ms: 100,
      meetsTarget: sequential.length + viaOwner.length > 0 && percentile([...sequential, ...viaOwner], 99) <= 100,
    }));
  } catch (error) {
    // Where the singletons were, and what the nodes logged, to see why.
    const status = await (await ApiClient.create(nodes[0]!.api, join(root, 'n0', 'operator.key')).catch(() => undefined))?.get<{ singletons: unknown }>('/api/v1/status').catch(() => undefined);
    console.error(JSON.stringify(status?.singletons), stderrs.map((s) => s.split('\n').filter((l) => /pool|singleton|fail/i.test(l)).slice(-5).join('\n')).join('\n---\n'));
    throw error;
  } finally {
    for (const n of nodes) {
      if (n.child.exitCode !== null) continue;
      const exited = once(n.child, 'exit');
      n.child.kill(STOP_SIGNAL);
      await exited;
    }
    await rm(root, { recursive: true, force: true });
  }
}

await main();
