// Failure detection and singleton failover on real node processes on 127.0.0.1 (issue 4).
// Run: npm run bench:control-plane                 detection and failover, 10 processes
//      npm run bench:control-plane -- --soak 10m   no false positives: one process CPU-starved
//      HOGS=2 npm run bench:control-plane -- --soak 10m   the same with two busy loops loading the machine
// Prints one JSON object of figures.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { ApiClient } from '../agent/api-client.ts';
import { parseDuration } from '../agent/cli-args.ts';
import { type CliFleet, NodeProcess, eventually, startCliFleet } from '../test/helpers/cli-fleet.ts';

const NODES = 10;
const TRIALS = Number(process.env['TRIALS'] ?? 10);
const SENSOR = 'sensor.instance-silence';

interface SingletonView {
  name: string;
  owner: string | null;
  epoch: number;
  active: boolean;
}
interface NodeStatus {
  self: { peerId: string };
  members: Array<{ peerId: string; state: string }>;
  singletons: SingletonView[];
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const round = (value: number): number => Math.round(value);
const summary = (values: readonly number[]) => ({ p50: round(percentile(values, 50)), p99: round(percentile(values, 99)), max: round(Math.max(...values)), samples: values.length });

function openSocket(client: ApiClient): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(client.webSocketUrl());
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Resolves with the time (performance.now) of the first message on `ws` that `matches`. */
function firstMatch(ws: WebSocket, matches: (message: Record<string, unknown>) => boolean, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`no matching message within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (data: WebSocket.RawData): void => {
      if (!matches(JSON.parse(data.toString()) as Record<string, unknown>)) return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(performance.now());
    };
    ws.on('message', onMessage);
  });
}

const status = (client: ApiClient): Promise<NodeStatus> => client.get<NodeStatus>('/api/v1/status');
const sensorOf = (s: NodeStatus): SingletonView | undefined => s.singletons.find((v) => v.name === SENSOR);

/** Waits until every node sees every member alive and one agreed owner running the sensor, and it stays so for 4 s. */
async function settled(fleet: CliFleet): Promise<string> {
  const agreed = async (): Promise<string | undefined> => {
    const all = await Promise.all(fleet.clients.map(status));
    const owner = sensorOf(all[0]!)?.owner;
    const ok = all.every((s) => s.members.length === NODES && s.members.every((m) => m.state === 'alive') && sensorOf(s)?.active === true && sensorOf(s)?.owner === owner);
    return ok && owner !== null && owner !== undefined ? owner : undefined;
  };
  for (;;) {
    const owner = await eventually(agreed, 60_000, 'the fleet settled', 200).catch(async (error: unknown) => {
      const all = await Promise.all(fleet.clients.map(status));
      const views = all.map((s) => `${s.self.peerId.slice(-6)}: ${s.members.filter((m) => m.state !== 'alive').map((m) => `${m.peerId.slice(-6)}=${m.state}`).join(' ') || 'all alive'}; sensor ${JSON.stringify(sensorOf(s))}`);
      throw new Error(`${String(error)}\n${views.join('\n')}`);
    });
    await new Promise((r) => setTimeout(r, 4_000));
    if ((await agreed()) === owner) return owner;
  }
}

/** Kills node `index` with SIGKILL and returns how long each other node took to see `matches`. */
async function killAndWatch(fleet: CliFleet, index: number, matches: (message: Record<string, unknown>) => boolean): Promise<number[]> {
  const watchers = fleet.clients.filter((_, i) => i !== index);
  const sockets = await Promise.all(watchers.map(openSocket));
  try {
    const seen = sockets.map((ws) => firstMatch(ws, matches, 20_000));
    const killedAt = performance.now();
    await fleet.nodes[index]!.kill9();
    return (await Promise.all(seen)).map((at) => at - killedAt);
  } finally {
    for (const ws of sockets) ws.close();
  }
}

/** Starts a killed node again on its data directory (no join string needed). */
async function restart(fleet: CliFleet, index: number): Promise<void> {
  fleet.nodes[index] = await NodeProcess.start(join(fleet.root, `n${index}`), index === 0 ? [] : ['--name', `n${index}`]);
  fleet.clients[index] = await fleet.nodes[index]!.client(fleet.operatorKey);
}

async function detectionAndFailover(fleet: CliFleet): Promise<Record<string, unknown>> {
  const detection: number[] = [];
  const failover: number[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    const owner = await settled(fleet);
    const ownerIndex = fleet.nodes.findIndex((n) => n.ready.peerId === owner);
    const victim = (ownerIndex + 1 + (trial % (NODES - 1))) % NODES;
    const victimPeer = fleet.nodes[victim]!.ready.peerId;
    detection.push(...(await killAndWatch(fleet, victim, (m) => m['type'] === 'member:state' && m['peerId'] === victimPeer && m['state'] === 'dead')));
    await restart(fleet, victim);

    const current = await settled(fleet);
    const currentIndex = fleet.nodes.findIndex((n) => n.ready.peerId === current);
    const moved = (m: Record<string, unknown>): boolean => {
      if (m['type'] !== 'singleton:changed') return false;
      const view = (m['singletons'] as SingletonView[]).find((v) => v.name === SENSOR);
      return view !== undefined && view.active && view.owner !== current;
    };
    failover.push(...(await killAndWatch(fleet, currentIndex, moved)));
    await restart(fleet, currentIndex);
    process.stderr.write(`trial ${trial + 1}/${TRIALS}: detection max ${round(Math.max(...detection.slice(-9)))} ms, failover max ${round(Math.max(...failover.slice(-9)))} ms\n`);
  }
  return {
    killToDeadOnEveryMemberMs: { ...summary(detection), target: 'p99 ≤ 3000' },
    killToNewActivationOnEveryNodeMs: { ...summary(failover), target: 'p99 ≤ 5000' },
  };
}

/**
 * One node is starved of CPU by SIGSTOP/SIGCONT in a duty cycle (stopped `stopMs` of every
 * `stopMs + runMs`); every member-state change on every node is counted for the whole soak.
 */
async function soak(fleet: CliFleet, durationMs: number, stopMs: number, runMs: number): Promise<Record<string, unknown>> {
  await settled(fleet);
  const starved = fleet.nodes[NODES - 1]!;
  const starvedPeer = starved.ready.peerId;
  const sockets = await Promise.all(fleet.clients.map(openSocket));
  const changes: Array<{ observer: number; peer: string; state: string; atMs: number }> = [];
  const startedAt = performance.now();
  sockets.forEach((ws, observer) =>
    ws.on('message', (data: WebSocket.RawData) => {
      const m = JSON.parse(data.toString()) as Record<string, unknown>;
      if (m['type'] === 'member:state') changes.push({ observer, peer: String(m['peer'] ?? m['peerId']), state: String(m['state']), atMs: round(performance.now() - startedAt) });
    }),
  );
  // Optional extra load: busy loops that compete with every node for the two cores.
  const hogs = Array.from({ length: Number(process.env['HOGS'] ?? 0) }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  let stopped = false;
  const pid = starved.child.pid!;
  let cycles = 0;
  const cycle = async (): Promise<void> => {
    while (performance.now() - startedAt < durationMs) {
      process.kill(pid, 'SIGSTOP');
      stopped = true;
      await new Promise((r) => setTimeout(r, stopMs));
      process.kill(pid, 'SIGCONT');
      stopped = false;
      cycles++;
      await new Promise((r) => setTimeout(r, runMs));
    }
  };
  await cycle().finally(() => {
    if (stopped) process.kill(pid, 'SIGCONT');
    for (const hog of hogs) hog.kill('SIGKILL');
  });
  await new Promise((r) => setTimeout(r, 3_000));
  for (const ws of sockets) ws.close();
  const deaths = changes.filter((c) => c.state === 'dead');
  return {
    soak: {
      durationMs,
      starvedNode: starvedPeer,
      dutyCycle: { stopMs, runMs, cycles },
      hogs: hogs.length,
      falsePositives: deaths.length,
      deaths,
      suspicions: changes.filter((c) => c.state === 'suspect').length,
      suspicionsOfStarved: changes.filter((c) => c.state === 'suspect' && c.peer === starvedPeer).length,
      target: 'no live node marked dead',
    },
  };
}

async function main(): Promise<void> {
  const soakIndex = process.argv.indexOf('--soak');
  const fleet = await startCliFleet(NODES, 'powernode-bench-cp-');
  try {
    const figures =
      soakIndex === -1
        ? await detectionAndFailover(fleet)
        : await soak(fleet, parseDuration(process.argv[soakIndex + 1] ?? '10m'), Number(process.env['STOP_MS'] ?? 150), Number(process.env['RUN_MS'] ?? 50));
    process.stdout.write(`${JSON.stringify({ nodes: NODES, ...figures }, null, 1)}\n`);
  } finally {
    await fleet.stop();
  }
}

await main();
