// Benchmarks for the node runtime (issue 2), on real node processes on 127.0.0.1.
// Run: npm run bench:runtime        (prints one JSON object of figures, and a summary table)
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import { LevelStorage } from '../agent/adapters/level-storage.ts';
import { createHash } from 'node:crypto';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { type NodeStateDocument, nodeDocId, recordAdmission } from '../crdt-schema/index.ts';
import { readOperatorKeyFile } from '../agent/key-files.ts';
import { decide } from '../agent/decisions.ts';
import { signGrant } from '../mesh/index.ts';
import { DocStore, MemoryLogger, type PeerId, SystemClockForBench, actorPrefixFor } from './bench-support.ts';
import { NodeProcess, type Status, cli, eventually } from '../test/helpers/cli-fleet.ts';
import { fakePeerId, writeAsNode } from '../test/helpers/mini-fleet.ts';
import { tempDir } from '../test/helpers/temp-dir.ts';

const NODES = 10;
const CHANGES = 50;
const BIG_FLEET = 1_000;

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (value: number): number => Math.round(value * 10) / 10;

async function rssMb(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(text)![1]) / 1024;
}

/** Ten nodes: label propagation latency, start time, idle RSS. */
async function tenNodeFleet(root: string): Promise<Record<string, unknown>> {
  const init = JSON.parse((await cli(['fleet', 'init', '--data', join(root, 'n0')])).stdout) as { operatorKey: string };
  const nodes = [await NodeProcess.start(join(root, 'n0'))];
  try {
    for (let i = 1; i < NODES; i++) {
      const token = (await cli(['token', 'create', '--api', nodes[0]!.ready.api, '--key', init.operatorKey])).stdout.trim();
      nodes.push(await NodeProcess.start(join(root, `n${i}`), ['--join', token, '--name', `n${i}`]));
    }
    const clients = await Promise.all(nodes.map((n) => n.client(init.operatorKey)));
    const operator = await readOperatorKeyFile(init.operatorKey);
    await Promise.all(
      clients.map((client) =>
        eventually(async () => {
          const s = await client.get<Status>('/api/v1/status');
          return s.members.length === NODES && s.members.every((m) => m.state === 'alive') && s.docs.filter((d) => d.id.startsWith('node/')).length === NODES && s.docs.some((d) => d.id === 'fleet') ? true : undefined;
        }, 30_000, 'ten-node fleet converged'),
      ),
    );

    // One WebSocket per observing node; a change counts as seen when its fleet document changes there.
    const sockets = await Promise.all(
      clients.slice(1).map(
        (client) =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(client.webSocketUrl());
            ws.once('open', () => resolve(ws));
            ws.once('error', reject);
          }),
      ),
    );
    const target = nodes[1]!.ready.peerId;
    const latencies: number[] = [];
    for (let change = 0; change < CHANGES; change++) {
      const seen = sockets.map(
        (ws) =>
          new Promise<number>((resolve) => {
            const onMessage = (data: WebSocket.RawData): void => {
              const event = JSON.parse(data.toString()) as { type: string; docId?: string };
              if (event.type === 'doc:changed' && event.docId === 'fleet') {
                ws.off('message', onMessage);
                resolve(performance.now());
              }
            };
            ws.on('message', onMessage);
          }),
      );
      const started = performance.now();
      await decide(clients[0]!, operator, 'labels', { node: target, set: { bench: String(change) }, remove: [] });
      const arrivals = await Promise.all(seen);
      latencies.push(...arrivals.map((t) => t - started));
      // Confirm through status on every node that the value really is there.
      for (const client of clients.slice(1)) {
        const s = await client.get<Status>('/api/v1/status');
        if (s.members.find((m) => m.peerId === target)?.labels['bench'] !== String(change)) throw new Error('label not in status after its change event');
      }
    }
    for (const ws of sockets) ws.close();

    await new Promise((r) => setTimeout(r, 10_000));
    const rss = await Promise.all(nodes.map((n) => rssMb(n.child.pid!)));
    await new Promise((r) => setTimeout(r, 20_000));
    const rss30 = await Promise.all(nodes.map((n) => rssMb(n.child.pid!)));

    // Restarts one at a time, so each start has the machine to itself as it would in a fleet.
    const restarted: number[] = [];
    for (let i = 5; i < NODES; i++) {
      await nodes[i]!.stop();
      nodes[i] = await NodeProcess.start(join(root, `n${i}`));
      restarted.push(nodes[i]!.startMs);
    }
    return {
      labelPropagation: { observers: NODES - 1, changes: CHANGES, samples: latencies.length, p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), maxMs: round(Math.max(...latencies)) },
      startToReadyMs: {
        founderAndJoiners: nodes.slice(0, 5).map((n) => n.startMs),
        restartsP50: percentile(restarted, 50),
        restartsMax: Math.max(...restarted),
      },
      idleRssMb: { after10s: { p50: round(percentile(rss, 50)), max: round(Math.max(...rss)) }, after30s: { p50: round(percentile(rss30, 50)), max: round(Math.max(...rss30)) } },
    };
  } finally {
    for (const node of nodes) await node.kill9();
  }
}

/** A node joins a fleet of 1,000 members and 1,000 node documents; then peers reconnect. */
async function bigFleetJoin(root: string): Promise<Record<string, unknown>> {
  const dirA = join(root, 'big-a');
  const init = JSON.parse((await cli(['fleet', 'init', '--data', dirA])).stdout) as { fleetId: string; peerId: string; operatorKey: string };
  const storage = await LevelStorage.open(join(dirA, 'state'));
  const store = await DocStore.open({ storage, clock: new SystemClockForBench(), actorId: `${actorPrefixFor(init.peerId)}ffffffff`, log: new MemoryLogger(), fleetId: init.fleetId });
  // As a real fleet would hold them: the founder admitted each node with an operator's grant
  // (recorded in the founder's own sealed document), and each node wrote its own document.
  const operator = await readOperatorKeyFile(init.operatorKey);
  const identity = privateKeyFromProtobuf(await readFile(join(dirA, 'identity.key')));
  const founderKey = { seed: identity.raw.subarray(0, 32), publicKey: identity.raw.subarray(32) };
  await store.change<NodeStateDocument>(
    nodeDocId(init.peerId),
    (draft) => {
      draft.schema = 1;
      for (let i = 0; i < BIG_FLEET; i++) {
        const tokenHash = createHash('sha256').update(`bench-token-${i}`).digest('hex');
        const grant = signGrant(operator.seed, { fleetId: init.fleetId, tokenHash, expiresAt: Date.now() + 3_600_000, operator: operator.publicKey });
        recordAdmission(draft, { tokenHash, peerId: fakePeerId(i), name: `m${i}`, admittedAt: Date.now(), grant });
      }
    },
    { signer: founderKey },
  );
  for (let i = 0; i < BIG_FLEET; i++) {
    await writeAsNode(store, fakePeerId(i) as PeerId, { hostname: `host-${i}`, arch: 'x64', platform: 'linux', addrs: [], startedAt: i }, init.fleetId);
  }
  await store.flush();
  await storage.close();

  const a = await NodeProcess.start(dirA);
  let b: NodeProcess | undefined;
  try {
    const clientA = await a.client(init.operatorKey);
    const token = (await cli(['token', 'create', '--api', a.ready.api, '--key', init.operatorKey])).stdout.trim();
    const spawnedAt = performance.now();
    b = await NodeProcess.start(join(root, 'big-b'), ['--join', token]);
    const readyAt = performance.now();
    const clientB = await b.client(init.operatorKey);
    const expectedDocs = BIG_FLEET + 3;
    await eventually(async () => ((await clientB.get<Status>('/api/v1/status')).docs.length >= expectedDocs ? true : undefined), 30_000, 'full state on the joiner', 100).catch(async (error: unknown) => {
      if (process.env['BENCH_DEBUG']) {
        const [sa, sb] = [await clientA.get<Status>('/api/v1/status'), await clientB.get<Status>('/api/v1/status')];
        process.stderr.write(`A: docs ${sa.docs.length} members ${sa.members.length}; B: docs ${sb.docs.length} members ${sb.members.length}\n`);
        process.stderr.write(b!.stderr.split('\n').filter((l) => !l.includes('dial failed')).slice(-15).join('\n') + '\n');
        const warnings = (text: string): string => text.split('\n').filter((l) => l.includes('"warn"') || l.includes('"error"')).slice(-15).join('\n');
        process.stderr.write(`A warnings:\n${warnings(a.stderr)}\nB warnings:\n${warnings(b!.stderr)}\n`);
      }
      throw error;
    });
    const fullAt = performance.now();
    // Then both must agree on every document (the joiner's own document travels back to A too).
    const same = await eventually(async () => {
      const [docsA, docsB] = await Promise.all([clientA.get<Status>('/api/v1/status'), clientB.get<Status>('/api/v1/status')]);
      const digestsA = new Map(docsA.docs.map((d) => [d.id, d.digest]));
      const ok = docsA.docs.length === docsB.docs.length && docsB.docs.every((d) => digestsA.get(d.id) === d.digest);
      if (!ok && process.env['BENCH_DEBUG']) process.stderr.write(`differ: ${JSON.stringify(docsB.docs.filter((d) => digestsA.get(d.id) !== d.digest).map((d) => d.id))} A=${docsA.docs.length} B=${docsB.docs.length} A.self=${a.ready.peerId} B.self=${b!.ready.peerId}\n`);
      return ok ? true : undefined;
    }, 10_000, 'identical documents on both nodes').catch((error: unknown) => {
      if (process.env['BENCH_DEBUG']) {
        const bDoc = `node/${b!.ready.peerId}`;
        const pick = (text: string): string => text.split('\n').filter((l) => l.includes(bDoc) || l.includes('summary') || l.includes('"entries"') || l.includes('session') || l.includes('stream')).join('\n').slice(-12000);
        process.stderr.write(`A:\n${pick(a.stderr)}\nB:\n${pick(b!.stderr)}\n`);
      }
      throw error;
    });
    const identicalAt = performance.now();
    const docsB = await clientB.get<Status>('/api/v1/status');

    // Reconnect: stop b, start it again; count what the sync sessions carried.
    await b.stop();
    b = await NodeProcess.start(join(root, 'big-b'));
    const clientB2 = await b.client(init.operatorKey);
    const peerA = a.ready.peerId;
    const session = await eventually(async () => {
      const s = await clientB2.get<{ peers: Array<{ peer: string; bytesIn: number; bytesOut: number; messagesIn: number; messagesOut: number }> }>('/api/v1/status');
      const p = s.peers.find((x) => x.peer === peerA);
      return p !== undefined && p.messagesIn >= 2 ? p : undefined;
    }, 15_000, 'reconnect session');
    await new Promise((r) => setTimeout(r, 2_000));
    const settled = (await clientB2.get<{ peers: Array<{ peer: string; bytesIn: number; bytesOut: number; messagesIn: number; messagesOut: number }> }>('/api/v1/status')).peers.find((x) => x.peer === peerA) ?? session;
    return {
      join1000: {
        docs: docsB.docs.length,
        identicalDigests: same,
        spawnToReadyMs: Math.round(readyAt - spawnedAt),
        readyToFullStateMs: Math.round(fullAt - readyAt),
        readyToIdenticalMs: Math.round(identicalAt - readyAt),
      },
      reconnect1000: { syncBytes: settled.bytesIn + settled.bytesOut, messagesIn: settled.messagesIn, messagesOut: settled.messagesOut },
    };
  } finally {
    await b?.kill9();
    await a.kill9();
  }
}

async function main(): Promise<void> {
  const root = await tempDir('powernode-bench-');
  try {
    const started = Date.now();
    const only = process.env['BENCH_ONLY'];
    process.stderr.write('bench: ten-node fleet\n');
    const ten = only === 'big' ? {} : await tenNodeFleet(root.path);
    process.stderr.write('bench: join a 1,000-member fleet\n');
    const big = only === 'ten' ? {} : await bigFleetJoin(root.path);
    const figures = { benchmark: 'node-runtime', date: new Date().toISOString(), cpus: (await import('node:os')).cpus().length, ...ten, ...big, wallMs: Date.now() - started };
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    await root.remove();
  }
}

await main();
