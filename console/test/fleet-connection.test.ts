import { describe, expect, it } from 'vitest';
import { NodeApiError } from '../src/lib/api.ts';
import { FleetConnection, type SocketLike } from '../src/lib/fleet-connection.svelte.ts';
import type { FleetEvent, NodeStatus } from '../src/lib/types.ts';
import { member, status } from './fixtures.ts';
import { settle } from './render.ts';

class FakeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  closed = false;
  constructor(readonly url: string) {}
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
  }
  drop(): void {
    this.onclose?.({} as CloseEvent);
  }
  close(): void {
    this.closed = true;
  }
}

/** A node as the connection sees it: scripted answers, sockets it can drop, timers run by hand. */
function harness(answers: { status?: () => Promise<NodeStatus>; events?: () => Promise<unknown> } = {}) {
  const sockets: FakeSocket[] = [];
  const timers: Array<{ fn: () => void; ms: number }> = [];
  const calls: string[] = [];
  let current = status([member(0), member(1), member(2)]);
  const api = {
    base: 'http://127.0.0.1:7420',
    webSocketUrl: async () => `ws://127.0.0.1:7420/api/v1/ws?n=${sockets.length}`,
    get: async <T>(path: string): Promise<T> => {
      calls.push(path);
      if (path.startsWith('/api/v1/events')) return ((await answers.events?.()) ?? { events: [] }) as T;
      return ((await answers.status?.()) ?? current) as T;
    },
  };
  let nowMs = 0;
  const fleet = new FleetConnection({
    api,
    openSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    setTimeout: (fn, ms) => {
      if (ms <= 50) queueMicrotask(fn);
      else timers.push({ fn, ms });
      return timers.length;
    },
    clearTimeout: () => {},
    now: () => nowMs++,
  });
  /** Runs the pending timer set for `ms` (the reconnect delay under test). */
  const runTimer = (ms: number): void => {
    const index = timers.findIndex((t) => t.ms === ms);
    if (index === -1) throw new Error(`no timer of ${ms} ms (timers: ${timers.map((t) => t.ms).join(', ')})`);
    timers.splice(index, 1)[0]!.fn();
  };
  return {
    fleet,
    sockets,
    runTimer,
    calls,
    setStatus: (next: NodeStatus) => (current = next),
  };
}

const hello = { type: 'hello', fleetId: 'ab'.repeat(16), peerId: member(0).peerId };

/** A harness whose connection has opened its socket and had the node's hello. */
async function live(answers: Parameters<typeof harness>[0] = {}): Promise<ReturnType<typeof harness>> {
  const h = harness(answers);
  h.fleet.start();
  await settle();
  h.sockets[0]!.send(hello);
  await settle();
  return h;
}

describe('the live connection to a node', () => {
  it('goes live at the node\'s hello and reads status and events', async () => {
    const h = harness();
    h.fleet.start();
    await settle();
    expect(h.fleet.connection.kind).toBe('connecting');
    h.sockets[0]!.send(hello);
    await settle();
    expect(h.fleet.connection).toMatchObject({ kind: 'live', peerId: member(0).peerId });
    expect(h.fleet.status?.members.length).toBe(3);
    expect(h.calls).toContain('/api/v1/status');
    expect(h.calls.some((c) => c.startsWith('/api/v1/events?'))).toBe(true);
    expect(h.fleet.events).toEqual([]);
  });

  it('shows a member\'s new state at once, and keeps it over a status read that began before it', async () => {
    const h = await live();
    const dead = (): string | undefined => h.fleet.status?.members.find((m) => m.peerId === member(1).peerId)?.state;
    // This read starts first and answers what the node knew before the change.
    h.fleet.handle({ type: 'doc:changed', docId: 'fleet', origin: 'x' });
    h.fleet.handle({ type: 'member:state', peerId: member(1).peerId, state: 'dead' });
    expect(dead()).toBe('dead');
    await settle();
    expect(dead()).toBe('dead');
    // A read that starts after the change is newer than it: what it says wins.
    h.fleet.handle({ type: 'doc:changed', docId: 'fleet', origin: 'x' });
    await settle();
    expect(dead()).toBe('alive');
  });

  it('reads status again on document changes, coalescing a burst', async () => {
    const h = await live();
    const before = h.calls.filter((c) => c === '/api/v1/status').length;
    for (let i = 0; i < 50; i++) h.fleet.handle({ type: 'doc:changed', docId: `node/${i}`, origin: 'x' });
    await settle();
    await settle();
    const reads = h.calls.filter((c) => c === '/api/v1/status').length - before;
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(2);
  });

  it('reconnects by itself with growing delays when the node goes away, and resets once back', async () => {
    const h = await live();
    h.sockets[0]!.drop();
    expect(h.fleet.connection).toMatchObject({ kind: 'reconnecting', attempt: 1, retryInMs: 250 });
    h.runTimer(250);
    await settle();
    expect(h.sockets.length).toBe(2);
    h.sockets[1]!.drop();
    await settle();
    expect(h.fleet.connection).toMatchObject({ kind: 'reconnecting', attempt: 2, retryInMs: 500 });
    h.runTimer(500);
    await settle();
    h.sockets[2]!.send(hello);
    await settle();
    expect(h.fleet.connection.kind).toBe('live');
    h.sockets[2]!.drop();
    expect(h.fleet.connection).toMatchObject({ kind: 'reconnecting', attempt: 1 });
  });

  it('says in plain words when the node refuses the key', async () => {
    const refusal = new NodeApiError(401, 'Your operator key was revoked by the fleet root key: ask the fleet owner for a new one.', 'that operator key was revoked by the fleet root key');
    const h = harness({ status: () => Promise.reject(refusal) });
    h.fleet.start();
    await settle();
    h.sockets[0]!.drop();
    await settle();
    expect(h.fleet.connection).toMatchObject({ kind: 'refused', reason: refusal.message });
  });

  it('marks the event feed unsupported on a node without it, and adds live events that match the filter', async () => {
    const h = await live({ events: () => Promise.reject(new NodeApiError(404, 'no', 'no such endpoint: GET /api/v1/events')) });
    expect(h.fleet.events).toBeNull();

    const h2 = await live();
    const event = (id: string, kind: string, severity: string): FleetEvent => ({ id, kind, severity, at: 1, subject: 's', detail: null, source: 'n' });
    h2.sockets[0]!.send({ type: 'event:new', event: event('1', 'member.dead', 'medium') });
    h2.sockets[0]!.send({ type: 'event:new', event: event('1', 'member.dead', 'medium') });
    expect(h2.fleet.events?.map((e) => e.id)).toEqual(['1']);
    // As the node filters: severity is a floor, a kind ending in * is a prefix.
    h2.fleet.setEventFilter({ kind: 'system.*', severity: 'high' });
    await settle();
    expect(h2.calls.at(-1)).toBe('/api/v1/events?kind=system.*&severity=high&limit=200');
    h2.sockets[0]!.send({ type: 'event:new', event: event('2', 'system.disk_full', 'medium') });
    h2.sockets[0]!.send({ type: 'event:new', event: event('3', 'member.dead', 'critical') });
    h2.sockets[0]!.send({ type: 'event:new', event: event('4', 'system.disk_full', 'critical') });
    h2.sockets[0]!.send({ type: 'event:new', event: event('5', 'system.instance_silent', 'high') });
    expect(h2.fleet.events?.map((e) => e.id)).toEqual(['5', '4']);
  });

  it('ignores messages that are not JSON or have no type', async () => {
    const h = harness();
    h.fleet.start();
    await settle();
    h.sockets[0]!.onmessage?.({ data: 'garbage' } as MessageEvent);
    h.sockets[0]!.onmessage?.({ data: '{"no":"type"}' } as MessageEvent);
    h.sockets[0]!.send({ type: 'something:new' });
    expect(h.fleet.connection.kind).toBe('connecting');
  });
});
