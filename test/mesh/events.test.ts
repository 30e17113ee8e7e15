import { describe, expect, it } from 'vitest';
import * as A from '@automerge/automerge';
import { ImmutableString } from '@automerge/automerge';
import { type DocId, EVENTS_PER_BUCKET_MAX, type EventsDocument, type FleetEvent, bucketEntries, eventsDocId, isRetired, readEvents, recordEvent, shardOf, toPlain } from '../../crdt-schema/index.ts';
import { EVENT_GATHER_MS, EventLog, MemoryLogger, SeededRandom, eventIdOf } from '../../mesh/index.ts';
import { Fleet } from '../helpers/memory-fleet.ts';
import { MiniFleet, type MiniNode, testIdentity } from '../helpers/mini-fleet.ts';

const DAY_MS = 86_400_000;

describe('fleet event log', () => {
  it('replicates events to every node, one per id however many nodes emit it, announcing each once', async () => {
    const fleet = new Fleet();
    const nodes = [await fleet.found(0), await fleet.join(1, 0, 'a'), await fleet.join(2, 0, 'b')];
    await fleet.run(1_000);
    const announced: FleetEvent[][] = nodes.map(() => []);
    nodes.forEach((node, i) => node.onEvent((e) => e.type === 'event:new' && announced[i]!.push(e.event)));
    const id = eventIdOf('system.instance_silent', 'someone', 1);
    const first = await fleet.pumpUntil(nodes[0]!.events.emit({ id, kind: 'system.instance_silent', severity: 'high', subject: 'someone', detail: 'silent' }));
    expect(first.written).toBe(true);
    await fleet.run(500);
    // Another node repeats the emission (a sensor after a failover): already held, nothing written.
    expect((await fleet.pumpUntil(nodes[1]!.events.emit({ id, kind: 'system.instance_silent', severity: 'high', subject: 'someone', detail: 'again' }))).written).toBe(false);
    // One that had not heard of it yet writes its own copy; readers still see one event.
    await fleet.pumpUntil(nodes[2]!.store.change<EventsDocument>(eventsDocId(nodes[2]!.peer, 'high', fleet.clock.now()), (d) => void recordEvent(d, { ...first.event, at: fleet.clock.now(), source: { peer: nodes[2]!.peer } }), { signer: testIdentity(2) }));
    await fleet.pumpUntil(nodes[0]!.events.emit({ kind: 'test.routine', severity: 'low', detail: 'routine' }));
    await fleet.run(500);
    for (const [i, node] of nodes.entries()) {
      const silent = node.events.list({ kind: 'system.instance_silent' });
      expect(silent.map((e) => [e.id, e.source.peer, e.detail])).toEqual([[id, nodes[0]!.peer, 'silent']]);
      expect(node.events.list({ severity: 'high' }).map((e) => e.kind)).toEqual(['system.instance_silent']);
      expect(node.events.list({ kind: 'test.*' }).map((e) => e.detail)).toEqual(['routine']);
      expect(announced[i]!.filter((e) => e.id === id)).toHaveLength(1);
      // Buckets counted are event buckets only (the fleet and node documents are no buckets).
      expect(node.events.stats()).toEqual({ buckets: node.store.ids().filter((doc) => doc.startsWith('events/')).length, events: 2 });
    }
  });

  it('refuses an event bucket sealed by anyone but the node it names', async () => {
    const fleet = new Fleet();
    const nodes = [await fleet.found(0), await fleet.join(1, 0, 'a'), await fleet.join(2, 0, 'b')];
    await fleet.run(1_000);
    const forged: FleetEvent = { id: eventIdOf('forged'), kind: 'system.instance_silent', severity: 'critical', at: fleet.clock.now(), detail: 'forged', source: { peer: nodes[0]!.peer } };
    // Node 1 writes a bucket that names node 0 as its writer, sealed with its own key.
    await fleet.pumpUntil(nodes[1]!.store.change<EventsDocument>(eventsDocId(nodes[0]!.peer, 'critical', fleet.clock.now()), (d) => void recordEvent(d, forged), { signer: testIdentity(1) }));
    await fleet.run(2_000);
    for (const node of [nodes[0]!, nodes[2]!]) {
      expect(node.events.list().map((e) => e.detail)).not.toContain('forged');
      expect(node.securityEvents().some((e) => e.peer === nodes[1]!.peer && e.kind === 'security.change_refused')).toBe(true);
    }
    // And the refusal itself is in the event log, where operators look.
    expect(nodes[2]!.events.list({ kind: 'security.change_refused' }).map((e) => e.subject)).toContain(nodes[1]!.peer);
  });
});

const byId = <T extends { id: string }>(xs: readonly T[]): T[] => [...xs].sort((x, y) => (x.id < y.id ? -1 : 1));

async function twoLogs() {
  const fleet = new MiniFleet();
  const a = await fleet.add(0);
  const b = await fleet.add(1);
  const logs = [a, b].map((node, index) => new EventLog({ store: node.store, clock: fleet.clock, random: new SeededRandom(index), log: new MemoryLogger(), self: node.peer, identity: testIdentity(index), isWriter: () => true }));
  for (const log of logs) log.start();
  await fleet.connect(a, b);
  return { fleet, a, b, logs, docId: eventsDocId(a.peer, 'low', fleet.clock.now()) };
}

describe('event index', () => {
  it('follows a bucket change by change (new, rewritten, broken and removed entries) as a full read of it would', async () => {
    const { fleet, a, b, logs, docId } = await twoLogs();
    const announced: string[] = [];
    logs[1]!.onEvent((event) => announced.push(event.detail));
    const emitted: FleetEvent[] = [];
    for (let i = 0; i < 5; i++) emitted.push((await logs[0]!.emit({ kind: 'test.step', severity: 'low', detail: `step ${i}` })).event);
    await fleet.run(200);
    // The writer (faulty, or a later release) rewrites one entry, breaks another and drops a third.
    await a.store.change<EventsDocument>(docId, (draft) => {
      const shard = (id: string) => draft.shards![shardOf(id)]!;
      const entry = (id: string) => JSON.parse(String(shard(id)[id])) as Record<string, unknown>;
      shard(emitted[0]!.id)[emitted[0]!.id] = new ImmutableString(JSON.stringify({ ...entry(emitted[0]!.id), detail: 'rewritten' }));
      shard(emitted[1]!.id)[emitted[1]!.id] = new ImmutableString(JSON.stringify({ ...entry(emitted[1]!.id), at: 'never' }));
      delete shard(emitted[2]!.id)[emitted[2]!.id];
    }, { signer: testIdentity(0) });
    await logs[0]!.emit({ kind: 'test.step', severity: 'low', detail: 'last' });
    await fleet.run(200);
    for (const [log, node] of [[logs[0]!, a], [logs[1]!, b]] as const) {
      const full = readEvents(docId, node.store.get(docId)).sort((x, y) => (x.id < y.id ? -1 : 1));
      expect(log.list().sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual(full);
      expect(log.list().map((e) => e.detail).sort()).toEqual(['last', 'rewritten', 'step 3', 'step 4']);
      expect(log.stats()).toEqual({ buckets: 1, events: 4 });
    }
    expect(announced.sort()).toEqual(['last', 'step 0', 'step 1', 'step 2', 'step 3', 'step 4']);
  });
});

describe('gathered emissions', () => {
  it('writes events emitted with gather in one change within EVENT_GATHER_MS, knows them at once, and an emission without gather takes them along', async () => {
    const { fleet, a, logs, docId } = await twoLogs();
    const changes = () => (a.store.has(docId) ? A.getAllChanges(a.store.get(docId) as A.Doc<unknown>).length : 0);
    const id = (n: number) => `${n.toString(16)}${'a'.repeat(31)}`;
    const first = [1, 2, 3].map((n) => logs[0]!.emit({ id: id(n), kind: 'test.gathered', severity: 'low', detail: `g${n}` }, { gather: true }));
    // Known (a repeat is not a second event), but not written yet: nothing in the bucket, nothing listed.
    expect(logs[0]!.has(id(1))).toBe(true);
    expect(logs[0]!.get(id(2))?.detail).toBe('g2');
    expect((await logs[0]!.emit({ id: id(1), kind: 'test.gathered', severity: 'low', detail: 'again' }, { gather: true })).written).toBe(false);
    expect(changes()).toBe(0);
    expect(logs[0]!.list()).toEqual([]);
    await fleet.run(EVENT_GATHER_MS - 50);
    expect(changes()).toBe(0);
    await fleet.run(100);
    expect((await Promise.all(first)).map((r) => r.written)).toEqual([true, true, true]);
    expect(changes()).toBe(1);
    await fleet.run(200);
    // Every node lists them, one change for the three.
    for (const log of logs) expect(log.list({ kind: 'test.gathered' }).map((e) => e.detail).sort()).toEqual(['g1', 'g2', 'g3']);

    // Gathered, then one emitted without gather into the same bucket: written together, at once.
    const gathered = logs[0]!.emit({ id: id(4), kind: 'test.gathered', severity: 'low', detail: 'g4' }, { gather: true });
    const now = logs[0]!.emit({ id: id(5), kind: 'test.now', severity: 'low', detail: 'n5' });
    expect(changes()).toBe(2);
    expect((await gathered).written).toBe(true);
    expect((await now).written).toBe(true);
    expect(logs[0]!.list({ kind: 'test.*' }).map((e) => e.detail).sort()).toEqual(['g1', 'g2', 'g3', 'g4', 'n5']);

    // High and critical events are never gathered (written at once, durably, in their own bucket).
    const high = eventsDocId(a.peer, 'high', fleet.clock.now());
    expect((await logs[0]!.emit({ kind: 'test.high', severity: 'high', detail: 'h' }, { gather: true })).written).toBe(true);
    expect(a.store.has(high)).toBe(true);

    // Stopping the log writes what it gathered.
    const last = logs[0]!.emit({ id: id(6), kind: 'test.gathered', severity: 'low', detail: 'g6' }, { gather: true });
    logs[0]!.stop();
    expect(changes()).toBe(3);
    expect((await last).written).toBe(true);
  });
});

describe('event buckets of earlier schemas', () => {
  it('reads a schema 2 bucket, carries it on in shards, and follows a dropped shard as a full read would', async () => {
    const { fleet, a, b, logs, docId } = await twoLogs();
    const id = (n: number) => `${n.toString(16)}${'0'.repeat(31)}`;
    // Today's bucket as a schema 2 writer left it: every entry in `events`.
    await a.store.change<EventsDocument>(docId, (draft) => {
      draft.schema = 2;
      draft.events = {};
      for (let n = 0; n < 3; n++) draft.events![id(n)] = new ImmutableString(JSON.stringify({ kind: 'test.old', severity: 'low', at: fleet.clock.now(), detail: `old ${n}` }));
    }, { signer: testIdentity(0) });
    // A repeat of an id the old map holds is refused; new ones go to the shards.
    expect((await logs[0]!.emit({ id: id(1), kind: 'test.old', severity: 'low', detail: 'again' })).written).toBe(false);
    for (let n = 0; n < 16; n++) await logs[0]!.emit({ id: `${n.toString(16)}${'1'.repeat(31)}`, kind: 'test.new', severity: 'low', detail: `new ${n}` });
    await fleet.run(200);
    const doc = a.store.get(docId) as unknown as EventsDocument;
    expect(doc.schema).toBe(3);
    expect(Object.keys(doc.events ?? {}).length).toBe(3);
    expect(Object.keys(doc.shards!).sort()).toEqual([...'0123456789abcdef']);
    for (const log of logs) expect(log.list().map((e) => e.detail).sort()).toEqual([...[0, 1, 2].map((n) => `old ${n}`), ...Array.from({ length: 16 }, (_, n) => `new ${n}`)].sort());
    // A faulty writer drops a whole shard and an old entry: both indexes follow, as a full read.
    await a.store.change<EventsDocument>(docId, (draft) => {
      delete draft.shards!['5'];
      delete draft.events![id(2)];
    }, { signer: testIdentity(0) });
    await fleet.run(200);
    for (const [log, node] of [[logs[0]!, a], [logs[1]!, b]] as const) {
      const full = readEvents(docId, node.store.get(docId)).sort((x, y) => (x.id < y.id ? -1 : 1));
      expect(log.list().sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual(full);
      expect(full.map((e) => e.detail)).not.toContain('new 5');
      expect(full.map((e) => e.detail)).not.toContain('old 2');
      expect(full).toHaveLength(17);
    }
  });
});

describe('the event index against a full read (a faulty or concurrent writer)', () => {
  it('drops the entries of a shard replaced by a new empty map, as a full read does', async () => {
    const { fleet, a, b, logs, docId } = await twoLogs();
    const ids = ['5'.repeat(32), `5${'1'.repeat(31)}`, 'a'.repeat(32)];
    for (const id of ids) await logs[0]!.emit({ id, kind: 'test.step', severity: 'low', detail: id.slice(0, 2) });
    await fleet.run(200);
    await a.store.change<EventsDocument>(docId, (d) => {
      d.shards!['5'] = {};
    }, { signer: testIdentity(0) });
    await fleet.run(200);
    for (const [log, node] of [[logs[0]!, a], [logs[1]!, b]] as const) {
      const full = byId(readEvents(docId, node.store.get(docId)));
      expect(full.map((e) => e.id)).toEqual([ids[2]]);
      expect(byId(log.list())).toEqual(full);
    }
  });

  it('follows the map that wins when two writers made `shards` concurrently', async () => {
    const { fleet, a, logs, docId } = await twoLogs();
    await logs[0]!.emit({ id: '5'.repeat(32), kind: 'test.step', severity: 'low', detail: 'held' });
    await fleet.run(50);
    const other = A.change(A.init<EventsDocument>({ actor: 'ff'.repeat(16) }), (d) => {
      d.schema = 3;
      d.shards = { '5': { [`5${'1'.repeat(31)}`]: new ImmutableString(JSON.stringify({ kind: 'test.step', severity: 'low', at: fleet.clock.now(), detail: 'other' })) } };
    });
    await a.store.adopt(docId, A.merge(A.clone(a.store.get(docId) as A.Doc<EventsDocument>), other) as never, a.peer);
    const full = byId(readEvents(docId, a.store.get(docId)));
    expect(full).toHaveLength(1);
    expect(byId(logs[0]!.list())).toEqual(full);
  });

  it('reads an entry put in another shard than its id names nowhere, followed or read in full', async () => {
    const { fleet, a, b, logs, docId } = await twoLogs();
    await logs[0]!.emit({ id: '5'.repeat(32), kind: 'test.step', severity: 'low', detail: 'right' });
    await fleet.run(200);
    await a.store.change<EventsDocument>(docId, (d) => {
      d.shards!['5']!['a'.repeat(32)] = new ImmutableString(JSON.stringify({ kind: 'test.step', severity: 'low', at: fleet.clock.now(), detail: 'misplaced' }));
      (d.shards as Record<string, unknown>)['zz'] = { ['b'.repeat(32)]: new ImmutableString(JSON.stringify({ kind: 'test.step', severity: 'low', at: fleet.clock.now(), detail: 'no shard' })) };
    }, { signer: testIdentity(0) });
    await fleet.run(200);
    for (const [log, node] of [[logs[0]!, a], [logs[1]!, b]] as const) {
      const full = byId(readEvents(docId, node.store.get(docId)));
      expect(full.map((e) => e.detail)).toEqual(['right']);
      expect(byId(log.list())).toEqual(full);
    }
  });
});

describe('a bucket written again after its writer lost unsynced changes', () => {
  it('keeps the entries a peer holds in a shard the restarted writer adds to', () => {
    const writer = testIdentity(3).peerId;
    const docId = eventsDocId(writer, 'low', 1_700_000_000_000);
    const ev = (id: string): FleetEvent => ({ id, kind: 'test.step', severity: 'low', at: 1_700_000_000_000, detail: id.slice(0, 2), source: { peer: writer } });
    const base = A.change(A.init<EventsDocument>({ actor: '01'.repeat(16) }), (d) => void recordEvent(d, ev('a'.repeat(32))));
    // Replicated to a peer, lost by the writer (routine events are not fsynced).
    const peersCopy = A.change(A.clone(base), (d) => void recordEvent(d, ev('5'.repeat(32))));
    const restarted = A.change(A.clone(base, { actor: '02'.repeat(16) }), (d) => void recordEvent(d, ev(`5${'1'.repeat(31)}`)));
    expect(readEvents(docId, A.merge(A.clone(restarted), peersCopy)).map((e) => e.id).sort()).toEqual(['5'.repeat(32), `5${'1'.repeat(31)}`, 'a'.repeat(32)].sort());
  });
});

describe('a full bucket', () => {
  it('refuses the emission past EVENTS_PER_BUCKET_MAX entries, counting again a bucket changed by another write', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const log = new EventLog({ store: a.store, clock: fleet.clock, random: new SeededRandom(0), log: new MemoryLogger(), self: a.peer, identity: testIdentity(0), isWriter: () => true });
    log.start();
    const docId = eventsDocId(a.peer, 'low', fleet.clock.now());
    const fill = (from: number, count: number) =>
      a.store.change<EventsDocument>(docId, (draft) => {
        for (let i = from; i < from + count; i++) recordEvent(draft, { id: i.toString(16).padStart(32, '0'), kind: 'test.fill', severity: 'low', at: fleet.clock.now(), detail: 'fill', source: { peer: a.peer } }, i);
      }, { signer: testIdentity(0) });
    await fill(0, EVENTS_PER_BUCKET_MAX - 3);
    // Counted once on this emission, then carried from one to the next.
    expect((await log.emit({ kind: 'test.step', severity: 'low', detail: 'one' })).written).toBe(true);
    expect((await log.emit({ kind: 'test.step', severity: 'low', detail: 'two' })).written).toBe(true);
    // Another write adds the last entry there is room for: the count carried is stale, and is not used.
    await fill(EVENTS_PER_BUCKET_MAX - 1, 1);
    expect(bucketEntries(a.store.get(docId) as unknown as EventsDocument)).toBe(EVENTS_PER_BUCKET_MAX);
    expect((await log.emit({ kind: 'test.step', severity: 'low', detail: 'three' })).written).toBe(false);
    expect((await log.emit({ kind: 'test.step', severity: 'low', detail: 'four' })).written).toBe(false);
    expect(bucketEntries(a.store.get(docId) as unknown as EventsDocument)).toBe(EVENTS_PER_BUCKET_MAX);
    expect(log.list({ kind: 'test.step' }).map((e) => e.detail).sort()).toEqual(['one', 'two']);
  });
});

describe('event bucket entries', () => {
  const writer = testIdentity(3).peerId;
  const docId = eventsDocId(writer, 'low', Date.parse('2026-12-01T12:00:00Z'));
  const id = (n: number) => n.toString(16).padStart(32, '0');

  it('writes each event as one JSON string in the shard of its id, and reads those and the maps of schema 1 buckets alike', () => {
    const event: FleetEvent = { id: id(1), kind: 'pool.claimed', severity: 'low', at: 1_000, detail: 'n1 claimed', subject: 's', payload: { pool: 'bench', n: 2 }, source: { peer: writer, singleton: 'control.pools', epoch: 3 } };
    let doc = A.change(A.init<EventsDocument>(), (d) => void recordEvent(d, event));
    expect(doc.schema).toBe(3);
    expect(shardOf(id(1))).toBe('0');
    expect(typeof toPlain(doc.shards!['0']![id(1)])).toBe('string');
    // A bucket a schema 1 writer made: maps of fields.
    doc = A.change(doc, (d) => {
      d.events = {};
      d.events[id(2)] = { kind: new ImmutableString('test.old'), severity: new ImmutableString('low'), at: 500, detail: new ImmutableString('old'), payload: { k: new ImmutableString('v') } };
    });
    // A repeat of an id the old map holds is not written again, in either place.
    A.change(doc, (d) => expect(recordEvent(d, { ...event, id: id(2) })).toBe(false));
    expect(readEvents(docId, doc).sort((a, b) => a.at - b.at)).toEqual([
      { id: id(2), kind: 'test.old', severity: 'low', at: 500, detail: 'old', payload: { k: 'v' }, source: { peer: writer } },
      event,
    ]);
  });

  it('leaves out entries that do not parse or break the rules (a faulty writer), and keeps the rest', () => {
    const good = JSON.stringify({ kind: 'test.ok', severity: 'low', at: 1, detail: 'ok' });
    const doc = A.change(A.init<EventsDocument>(), (d) => {
      d.schema = 2;
      d.events = {};
      d.events[id(1)] = new ImmutableString(good);
      d.events[id(2)] = new ImmutableString('{"kind": "test.broken"');
      d.events[id(3)] = new ImmutableString(JSON.stringify({ kind: 'test.nested', severity: 'low', at: 1, detail: 'x', payload: { deep: { a: 1 } } }));
      d.events[id(4)] = new ImmutableString(JSON.stringify({ kind: 'test.big', severity: 'low', at: 1, detail: 'x'.repeat(70_000) }));
      d.events[id(5)] = new ImmutableString('[1,2]');
      // Times no reader can show (1e999 parses as Infinity), an epoch that is not a whole number.
      d.events[id(6)] = new ImmutableString('{"kind": "test.time", "severity": "low", "at": 1e999, "detail": "x"}');
      d.events[id(7)] = new ImmutableString(JSON.stringify({ kind: 'test.time', severity: 'low', at: 1e300, detail: 'x' }));
      d.events[id(8)] = new ImmutableString(JSON.stringify({ kind: 'test.epoch', severity: 'low', at: 1, detail: 'x', epoch: 1.5 }));
      d.events['not-an-id'] = new ImmutableString(good);
    });
    expect(readEvents(docId, doc).map((e) => e.id)).toEqual([id(1)]);
  });
});

describe('event retention', () => {
  it('deletes routine buckets after 90 days and high ones after 365, and takes no retired bucket back from a peer', async () => {
    const fleet = new MiniFleet();
    const logs: EventLog[] = [];
    const add = async (index: number): Promise<MiniNode> =>
      fleet.add(index, undefined, { acceptsDocument: (id) => !id.startsWith('events/') || logs[index]!.accepts(id) });
    const a = await add(0);
    const b = await add(1);
    for (const [index, node] of [a, b].entries()) {
      logs[index] = new EventLog({ store: node.store, clock: fleet.clock, random: new SeededRandom(index), log: new MemoryLogger(), self: node.peer, identity: testIdentity(index), isWriter: () => true });
      logs[index]!.start();
    }
    await fleet.connect(a, b);
    await logs[0]!.emit({ kind: 'test.routine', severity: 'medium', detail: 'routine' });
    await logs[0]!.emit({ kind: 'test.important', severity: 'critical', detail: 'important' });
    await fleet.run(200);
    expect(logs[1]!.list().map((e) => e.detail).sort()).toEqual(['important', 'routine']);
    const routineDoc = eventsDocId(a.peer, 'medium', fleet.clock.now()) as DocId;

    fleet.clock.jumpTo(fleet.clock.now() + 91 * DAY_MS);
    expect(isRetired(routineDoc, fleet.clock.now())).toBe(true);
    await logs[1]!.prune();
    expect(b.store.has(routineDoc)).toBe(false);
    expect(await b.storage.range(['doc', routineDoc])).toEqual([]);
    expect(logs[1]!.list().map((e) => e.detail)).toEqual(['important']);
    // The peer that has not pruned yet still offers it: not taken back.
    b.replicator.resendSummaries();
    a.replicator.resendSummaries();
    await fleet.run(500);
    expect(b.store.has(routineDoc)).toBe(false);

    fleet.clock.jumpTo(fleet.clock.now() + 275 * DAY_MS);
    await logs[0]!.prune();
    await logs[1]!.prune();
    expect(logs[0]!.list()).toEqual([]);
    expect(logs[1]!.stats()).toEqual({ buckets: 0, events: 0 });
  });
});
