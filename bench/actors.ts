// Remote actor messaging between two real processes over libp2p on 127.0.0.1 (issue 4):
// ask round trip and tell throughput. Run: npm run bench:actors
import { spawn } from 'node:child_process';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { ActorHost, type Behavior, RemoteActors } from '../actors/index.ts';
import { Libp2pTransport } from '../agent/adapters/libp2p-transport.ts';
import { SystemClock } from '../agent/adapters/system-clock.ts';
import { MemoryLogger, type PeerId, PeerPenalties, s } from '../mesh/index.ts';

const FLEET_ID = '0123456789abcdef0123456789abcdef';
const ASKS = 3_000;
const WARMUP_ASKS = 300;
const THROUGHPUT_MS = 5_000;
const TELL_WINDOW = 4_000;

const anyMessage = { check: (value: unknown) => value } as s.Shape<unknown>;

/** One process's actor host on a real libp2p transport; every peer is let in (no fleet here). */
async function actorNode() {
  const clock = new SystemClock();
  const transport = await Libp2pTransport.create({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], fleetId: FLEET_ID });
  transport.setAccessPolicy({ isDenied: () => false, whenAdmitted: async () => true });
  let remote: RemoteActors | undefined;
  const host = new ActorHost({ clock, log: new MemoryLogger(), self: transport.localPeer, sendRemote: (to, message) => remote!.tell(to, message) });
  remote = new RemoteActors({ transport, clock, log: new MemoryLogger(), penalties: new PeerPenalties({ clock, onExceeded: () => {} }), host, isAdmitted: () => true, isReachable: () => true });
  remote.start();
  return { transport, host, remote };
}

/** The far side: an echo actor and a counter, until stdin closes. */
async function peer(): Promise<void> {
  const { transport, host } = await actorNode();
  const echo: Behavior<null, unknown> = { initial: () => null, step: (state, message) => ({ state, effects: [{ type: 'reply', value: message }] }) };
  const counter: Behavior<number, { type: string }> = {
    initial: () => 0,
    step: (count, message) => (message.type === 'count' ? { state: count, effects: [{ type: 'reply', value: count }] } : { state: count + 1 }),
  };
  host.spawn('echo', echo, { remote: anyMessage });
  host.spawn('counter', counter as Behavior<unknown, unknown>, { remote: anyMessage, mailbox: 50_000 });
  process.stdout.write(`${JSON.stringify({ addrs: transport.listenAddresses() })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void transport.stop().then(() => process.exit(0)));
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const child = spawn(process.execPath, [import.meta.filename, 'peer'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ready = await new Promise<{ addrs: string[] }>((resolve) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))) as { addrs: string[] });
    });
  });
  const { transport, remote } = await actorNode();
  const farPeer = ready.addrs[0]!.split('/p2p/')[1] as PeerId;
  await transport.dial(farPeer, ready.addrs);
  const echo = { node: farPeer, path: 'echo' };
  const counter = { node: farPeer, path: 'counter' };

  const rtts: number[] = [];
  for (let i = 0; i < WARMUP_ASKS + ASKS; i++) {
    const started = performance.now();
    await remote.ask(echo, { seq: i, body: 'ping' });
    if (i >= WARMUP_ASKS) rtts.push(performance.now() - started);
  }

  // Tells in windows: a window of tells, then an ask that comes back once they were all handled.
  let sent = 0;
  const startedAt = performance.now();
  while (performance.now() - startedAt < THROUGHPUT_MS) {
    for (let i = 0; i < TELL_WINDOW; i++) if (remote.tell(counter, { type: 'n', seq: sent + i })) sent++;
    await remote.ask(counter, { type: 'count' }, { timeoutMs: 30_000 });
  }
  const handled = await remote.ask<number>(counter, { type: 'count' });
  const seconds = (performance.now() - startedAt) / 1000;
  const figures = {
    askRoundTripMs: { p50: round(percentile(rtts, 50)), p99: round(percentile(rtts, 99)), max: round(Math.max(...rtts)), samples: rtts.length },
    tellThroughput: { messagesPerSecond: Math.round(handled / seconds), sent, handled, seconds: round(seconds) },
    targets: { askP50Ms: 2, messagesPerSecond: 20_000 },
  };
  process.stdout.write(`${JSON.stringify(figures, null, 1)}\n`);
  child.stdin!.end();
  await transport.stop();
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

if (process.argv[2] === 'peer') await peer();
else await main();
