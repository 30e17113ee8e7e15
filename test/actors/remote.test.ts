import { describe, expect, it } from 'vitest';
import { ActorHost, type Behavior, DeadLetterError } from '../../actors/host.ts';
import { RemoteActors, RemoteRefusedError, actorProtocol } from '../../actors/remote.ts';
import { ManualClock, MemoryLogger, MemoryNetwork, type PeerId, PeerPenalties, encodeCbor, s } from '../../mesh/index.ts';
import { settle, testIdentity } from '../helpers/mini-fleet.ts';

type Message = { kind: 'add'; n: number } | { kind: 'get' } | { kind: 'hold' };
const messageShape = s.object({ kind: s.oneOf(['add', 'get', 'hold'] as const), n: s.optional(s.uint()) }) as unknown as s.Shape<unknown>;

const counter: Behavior<{ total: number; seen: number[] }, Message> = {
  initial: () => ({ total: 0, seen: [] }),
  step: (state, message) => {
    if (message.kind === 'add') return { state: { total: state.total + message.n, seen: [...state.seen, message.n] } };
    if (message.kind === 'get') return { state, effects: [{ type: 'reply', value: { total: state.total, seen: state.seen.length } }] };
    return { state };
  },
};

/** Two or more actor hosts on one in-memory network and virtual clock. */
function setup(size = 2) {
  const clock = new ManualClock();
  const network = new MemoryNetwork();
  const down = new Set<string>();
  const nodes = Array.from({ length: size }, (_, i) => {
    const peer = testIdentity(i).peerId as PeerId;
    const transport = network.createTransport(peer);
    const penalties = new PeerPenalties({ clock, onExceeded: () => {} });
    let remote: RemoteActors | undefined;
    const host = new ActorHost({ clock, log: new MemoryLogger(), self: peer, sendRemote: (to, message) => remote!.tell(to, message) });
    remote = new RemoteActors({ transport, clock, log: new MemoryLogger(), penalties, host, isAdmitted: () => true, isReachable: (p) => !down.has(p) });
    remote.start();
    return { peer, transport, penalties, host, remote };
  });
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) await clock.advanceAsync(5, settle);
  };
  return { clock, network, nodes, down, run };
}

describe('remote actors', () => {
  it('tells and asks an actor on another node through its ref, in order', async () => {
    const { nodes, run } = setup();
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    b.host.spawn('counter', counter, { remote: messageShape, mailbox: 5_000 });
    for (let n = 1; n <= 2_000; n++) expect(a.host.send({ node: b.peer, path: 'counter' }, { kind: 'add', n: n % 7 })).toBe(true);
    const answer = a.remote.ask<{ total: number; seen: number }>({ node: b.peer, path: 'counter' }, { kind: 'get' });
    await run(50);
    let expected = 0;
    for (let n = 1; n <= 2_000; n++) expected += n % 7;
    expect(await answer).toEqual({ total: expected, seen: 2_000 });
    expect(a.remote.stats()).toMatchObject({ sent: 2_001, pendingAsks: 0, deadLetters: 0 });
    expect(b.remote.stats()).toMatchObject({ received: 2_001, refused: 0 });
  });

  it('refuses what the target actor does not accept from other nodes, and counts bad messages against the sender', async () => {
    const { nodes, run } = setup();
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    b.host.spawn('counter', counter, { remote: messageShape });
    b.host.spawn('local-only', counter);
    const badShape = a.remote.ask({ node: b.peer, path: 'counter' }, { kind: 'explode' }).catch((error: unknown) => error);
    const localOnly = a.remote.ask({ node: b.peer, path: 'local-only' }, { kind: 'get' }).catch((error: unknown) => error);
    const missing = a.remote.ask({ node: b.peer, path: 'nobody' }, { kind: 'get' }).catch((error: unknown) => error);
    await run(20);
    expect(await badShape).toBeInstanceOf(RemoteRefusedError);
    expect(String(await badShape)).toContain('bad-message');
    expect(String(await localOnly)).toContain('not-remote');
    expect(String(await missing)).toContain('no-such-actor');
    expect(b.penalties.snapshot().byPeer).toEqual({ [a.peer]: { 'actor:bad-shape': 1 } });
    expect(b.host.stats().deadLetters).toBe(3);
  });

  it('turns messages to a node held dead into dead letters at once', async () => {
    const { nodes, down } = setup();
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    down.add(b.peer);
    expect(a.host.send({ node: b.peer, path: 'counter' }, { kind: 'get' })).toBe(false);
    await expect(a.remote.ask({ node: b.peer, path: 'counter' }, { kind: 'get' })).rejects.toBeInstanceOf(DeadLetterError);
    expect(a.remote.stats().deadLetters).toBe(2);
  });

  it('fails asks in flight as soon as their node dies, without waiting for the timeout', async () => {
    const { nodes, run, clock } = setup();
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    b.host.spawn('counter', counter, { remote: messageShape });
    const held = a.remote.ask({ node: b.peer, path: 'counter' }, { kind: 'hold' }, { timeoutMs: 60_000 }).catch((error: unknown) => error);
    await run(20);
    const crashedAt = clock.now();
    await b.transport.stop();
    await run(10);
    const error = await held;
    expect(error).toBeInstanceOf(DeadLetterError);
    expect(clock.now() - crashedAt).toBeLessThan(100);
    expect(a.remote.stats().pendingAsks).toBe(0);

    const { nodes: others, run: runOthers } = setup();
    const [c, d] = others as [(typeof others)[0], (typeof others)[0]];
    d.host.spawn('counter', counter, { remote: messageShape });
    const waiting = c.remote.ask({ node: d.peer, path: 'counter' }, { kind: 'hold' }, { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await runOthers(20);
    c.remote.peerDown(d.peer);
    expect(await waiting).toBeInstanceOf(DeadLetterError);
  });

  it('counts malformed frames against the sender and keeps serving its good ones', async () => {
    const { nodes, run } = setup();
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    b.host.spawn('counter', counter, { remote: messageShape });
    const stream = await a.transport.openStream(b.peer, actorProtocol.id, { maxFrameBytes: actorProtocol.maxFrameBytes });
    await stream.send(new Uint8Array([0xff, 0x00, 0x13]));
    await stream.send(encodeCbor([1, 'batch', { items: [{ t: 'tell', to: 'counter', body: 'not bytes' }] }]));
    await stream.send(encodeCbor([1, 'batch', { items: [{ t: 'reply', id: 9 }] }]));
    await stream.send(encodeCbor([1, 'batch', { items: [{ t: 'tell', to: 'counter', body: encodeCbor({ kind: 'add', n: 5 }) }] }]));
    await run(20);
    expect(b.penalties.snapshot().byPeer[a.peer]).toEqual({ 'actor:malformed': 1, 'actor:bad-shape': 1, 'actor:protocol': 1 });
    const total = a.remote.ask<{ total: number }>({ node: b.peer, path: 'counter' }, { kind: 'get' });
    await run(20);
    expect((await total).total).toBe(5);
  });
});
