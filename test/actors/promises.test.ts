import { describe, expect, it } from 'vitest';
import { type EpochStamp, OwnerPromises, QuorumLease, storagePromiseStore } from '../../actors/index.ts';
import type { LeaseAnswer, LeaseRequest, OwnerClaim, PromiseAnswer, QuorumLeaseInit } from '../../actors/index.ts';
import { ManualClock, MemoryLogger, MemoryStorage } from '../../mesh/index.ts';

const TERM_MS = 1_000;
const S = 'sensor';

/** A member's promises on a manual clock and a memory storage, started (and past its start-up term). */
async function member(options: { storage?: MemoryStorage; clock?: ManualClock; known?: (name: string) => EpochStamp | undefined } = {}) {
  const clock = options.clock ?? new ManualClock();
  const storage = options.storage ?? new MemoryStorage();
  const promises = new OwnerPromises({ clock, log: new MemoryLogger(), termMs: TERM_MS, store: storagePromiseStore(storage, new MemoryLogger()), known: options.known ?? (() => undefined) });
  await promises.start();
  clock.advance(promises.holdMs);
  const ask = async (from: string, claims: OwnerClaim[], releases: OwnerClaim[] = [], running: string[] = []): Promise<readonly PromiseAnswer[]> => promises.answer(from, claims, releases, new Set(running));
  return { clock, storage, promises, ask };
}

describe('ownership promises: a member', () => {
  it('promises a singleton to one claimant at a time, and to another only once the term has lapsed', async () => {
    const { clock, ask } = await member();
    expect(await ask('a', [{ name: S, epoch: 4 }])).toEqual([{ name: S, epoch: 4, granted: true }]);
    // b claims the same epoch (it computed the same next epoch from the same records) and a higher one.
    expect(await ask('b', [{ name: S, epoch: 4 }])).toEqual([{ name: S, epoch: 4, granted: false, reason: 'promised', holder: 'a', holderRunning: false }]);
    expect((await ask('b', [{ name: S, epoch: 5 }]))[0]).toMatchObject({ granted: false, reason: 'promised', holder: 'a' });
    clock.advance(TERM_MS - 1);
    expect((await ask('b', [{ name: S, epoch: 5 }]))[0]).toMatchObject({ granted: false, holder: 'a' });
    clock.advance(50);
    expect((await ask('b', [{ name: S, epoch: 5 }]))[0]).toMatchObject({ granted: true });
  });

  it('renews the holder’s promise for as long as it asks, and says the holder runs it', async () => {
    const { clock, ask } = await member();
    await ask('a', [{ name: S, epoch: 1 }]);
    for (let i = 0; i < 10; i++) {
      clock.advance(250);
      expect((await ask('a', [{ name: S, epoch: 1 }], [], [S]))[0]!.granted).toBe(true);
    }
    expect((await ask('b', [{ name: S, epoch: 2 }]))[0]).toMatchObject({ granted: false, holder: 'a', holderRunning: true });
  });

  it('never promises one epoch to two owners, even after the first promise lapsed', async () => {
    const { clock, ask } = await member();
    await ask('a', [{ name: S, epoch: 3 }]);
    clock.advance(TERM_MS + 100);
    expect((await ask('b', [{ name: S, epoch: 3 }]))[0]).toEqual({ name: S, epoch: 3, granted: false, reason: 'stale', highestEpoch: 3, highestOwner: 'a' });
    expect((await ask('b', [{ name: S, epoch: 2 }]))[0]).toMatchObject({ granted: false, reason: 'stale' });
    // The same owner may claim its epoch again; anyone may claim a higher one.
    expect((await ask('a', [{ name: S, epoch: 3 }]))[0]!.granted).toBe(true);
  });

  it('refuses an epoch that an activation it knows of (records, orders) already took', async () => {
    const { ask } = await member({ known: () => ({ epoch: 7, owner: 'c' }) });
    expect((await ask('b', [{ name: S, epoch: 7 }]))[0]).toMatchObject({ granted: false, reason: 'stale', highestEpoch: 7, highestOwner: 'c' });
    expect((await ask('c', [{ name: S, epoch: 7 }]))[0]!.granted).toBe(true);
    expect((await ask('b', [{ name: S, epoch: 8 }]))[0]).toMatchObject({ granted: false, reason: 'promised', holder: 'c' });
  });

  it('frees a promise its holder gives back, but not one it gave to someone else', async () => {
    const { ask } = await member();
    await ask('a', [{ name: S, epoch: 1 }]);
    await ask('b', [], [{ name: S, epoch: 1 }]);
    expect((await ask('b', [{ name: S, epoch: 2 }]))[0]!.granted).toBe(false);
    await ask('a', [], [{ name: S, epoch: 0 }]);
    expect((await ask('b', [{ name: S, epoch: 2 }]))[0]!.granted).toBe(false);
    await ask('a', [], [{ name: S, epoch: 1 }]);
    expect((await ask('b', [{ name: S, epoch: 2 }]))[0]!.granted).toBe(true);
  });

  it('after a restart promises nothing for a term, and remembers the epochs it promised', async () => {
    const first = await member();
    await first.ask('a', [{ name: S, epoch: 9 }]);
    // The process dies with the promise in memory and starts again on the same storage.
    const clock = first.clock;
    const restarted = new OwnerPromises({ clock, log: new MemoryLogger(), termMs: TERM_MS, store: storagePromiseStore(first.storage, new MemoryLogger()), known: () => undefined });
    await restarted.start();
    const ask = async (from: string, claim: OwnerClaim) => (await restarted.answer(from, [claim], [], new Set()))[0]!;
    expect(await ask('b', { name: S, epoch: 10 })).toMatchObject({ granted: false, reason: 'restarting' });
    clock.advance(restarted.holdMs - 1);
    expect(await ask('b', { name: S, epoch: 10 })).toMatchObject({ granted: false, reason: 'restarting' });
    clock.advance(1);
    expect(await ask('b', { name: S, epoch: 9 })).toMatchObject({ granted: false, reason: 'stale', highestEpoch: 9, highestOwner: 'a' });
    expect(await ask('b', { name: S, epoch: 10 })).toMatchObject({ granted: true });
  });

  it('answers a grant only once the raised epoch is stored', async () => {
    const storage = new MemoryStorage();
    const { ask } = await member({ storage });
    let release: () => void = () => {};
    const batch = storage.batch.bind(storage);
    storage.batch = async (ops, options) => {
      await new Promise<void>((resolve) => (release = resolve));
      return batch(ops, options);
    };
    let answered = false;
    const answer = ask('a', [{ name: S, epoch: 1 }]).then((a) => {
      answered = true;
      return a;
    });
    await Promise.resolve();
    await Promise.resolve();
    expect(answered).toBe(false);
    release();
    expect((await answer)[0]!.granted).toBe(true);
    expect(await storage.range(['control-plane', 'promised'])).toHaveLength(1);
  });

  it('keeps a promise for at least a term when its clock is stepped back', async () => {
    // A wall clock an NTP step can move back (ManualClock refuses to).
    let nowMs = 1_700_000_000_000;
    const clock = { now: () => nowMs, setTimeout: () => 0, clearTimeout: () => {} };
    const promises = new OwnerPromises({ clock, log: new MemoryLogger(), termMs: TERM_MS, store: storagePromiseStore(new MemoryStorage(), new MemoryLogger()), known: () => undefined });
    await promises.start();
    nowMs += promises.holdMs;
    await promises.answer('a', [{ name: S, epoch: 1 }], [], new Set());
    nowMs += 900;
    nowMs -= 10_000;
    // Counted from the stepped clock, the promise holds a whole term more, not 10 s more nor none.
    expect(promises.promisedTo(S)).toEqual({ to: 'a', epoch: 1 });
    nowMs += TERM_MS - 1;
    expect(promises.promisedTo(S)).toEqual({ to: 'a', epoch: 1 });
    nowMs += promises.holdMs - TERM_MS + 1;
    expect(promises.promisedTo(S)).toBeUndefined();
  });
});

/** A lease whose members answer through `answer`, on a manual clock; this node is "self". `init` adds or replaces what the lease is built with. */
function leaseOf(peers: string[], answer: (peer: string, request: LeaseRequest) => LeaseAnswer | undefined, local: (claims: readonly OwnerClaim[]) => PromiseAnswer[], init: Partial<QuorumLeaseInit> = {}) {
  const clock = new ManualClock();
  const lease = new QuorumLease({
    clock,
    self: 'self',
    members: () => ['self', ...peers],
    reachable: () => true,
    ping: async (peer, request) => answer(peer, request),
    holding: () => [],
    promiseLocally: (claims) => local(claims),
    ...init,
  });
  return { clock, lease };
}

const silentAnswer = (): LeaseAnswer => ({ alive: [], holders: [], epochs: {}, promises: [] });

const grantAll = (request: LeaseRequest): LeaseAnswer => ({ alive: [], holders: [], epochs: {}, promises: request.claims.map((c) => ({ ...c, granted: true })) });
const refuseAll = (request: LeaseRequest, holder: string): LeaseAnswer => ({ alive: [], holders: [], epochs: {}, promises: request.claims.map((c) => ({ ...c, granted: false, reason: 'promised' as const, holder, holderRunning: false })) });

describe('ownership promises: a claimant', () => {
  it('holds a claim only while a majority, itself included, promised it within a term of asking', async () => {
    const granting = new Set(['m1']);
    const { clock, lease } = leaseOf(['m1', 'm2', 'm3', 'm4'], (peer, request) => (granting.has(peer) ? grantAll(request) : refuseAll(request, 'rival')), (claims) => claims.map((c) => ({ ...c, granted: true })));
    lease.want(true);
    lease.claims.claim(S, 5);
    await clock.advanceAsync(1);
    // Itself and m1: two of five.
    expect(lease.claims.promised(S, 5)).toBe(false);
    expect(lease.claims.obstacles(S).rivals).toEqual([{ peer: 'rival', running: false }]);
    granting.add('m2');
    await clock.advanceAsync(250);
    expect(lease.claims.promised(S, 5)).toBe(true);
    expect(lease.claims.promised(S, 4)).toBe(false);
    // Everyone stops answering: the promises run out a term after the last round they answered.
    const lastAnswered = clock.now();
    granting.clear();
    await clock.advanceAsync(TERM_MS - 260);
    expect(lease.claims.promised(S, 5)).toBe(true);
    await clock.advanceAsync(lastAnswered + TERM_MS - clock.now());
    expect(lease.claims.promised(S, 5)).toBe(false);
  });

  it('counts no promise after giving its claim back, and tells the members it gave it back', async () => {
    const requests: LeaseRequest[] = [];
    const { clock, lease } = leaseOf(['m1', 'm2'], (_, request) => (requests.push(request), grantAll(request)), (claims) => claims.map((c) => ({ ...c, granted: true })));
    lease.want(true);
    lease.claims.claim(S, 2);
    await clock.advanceAsync(1);
    expect(lease.claims.promised(S, 2)).toBe(true);
    lease.claims.unclaim(S);
    expect(lease.claims.promised(S, 2)).toBe(false);
    await clock.advanceAsync(1);
    expect(requests.at(-1)).toMatchObject({ claims: [], releases: [{ name: S, epoch: 2 }] });
  });
});

describe('quorum lease: whether the members agree a holder is gone', () => {
  /** Self and six members, one of them the dead holder; `views` says what each answering member holds of it. */
  async function agreesGone(views: Record<string, 'alive' | 'gone'>): Promise<boolean> {
    const peers = ['dead', 'm1', 'm2', 'm3', 'm4', 'm5'];
    const { clock, lease } = leaseOf(
      peers,
      (peer, request) => (views[peer] === undefined ? undefined : { ...silentAnswer(), alive: views[peer] === 'alive' ? request.watch.filter((p) => p === 'dead') : [] }),
      () => [],
    );
    lease.watch(['dead']);
    lease.want(true);
    await clock.advanceAsync(1);
    return lease.quorumAgreesGone('dead');
  }

  it('agrees when a majority with this node hold it gone, though one member has not heard of it yet', async () => {
    expect(await agreesGone({ m1: 'gone', m2: 'gone', m3: 'gone', m4: 'gone', m5: 'gone' })).toBe(true);
    expect(await agreesGone({ m1: 'gone', m2: 'gone', m3: 'gone', m4: 'gone', m5: 'alive' })).toBe(true);
    expect(await agreesGone({ m1: 'gone', m2: 'gone', m3: 'gone' })).toBe(true);
  });

  it('does not agree when those holding it gone are no majority with this node: a node back from a partition with two members that hold everyone dead, and one that sees the owner', async () => {
    expect(await agreesGone({ m1: 'gone', m2: 'gone', m3: 'alive' })).toBe(false);
    expect(await agreesGone({ m1: 'alive', m2: 'alive', m3: 'alive', m4: 'alive', m5: 'alive' })).toBe(false);
    expect(await agreesGone({ m1: 'gone', m2: 'gone', m3: 'alive', m4: 'alive' })).toBe(false);
    expect(await agreesGone({ m1: 'gone', m2: 'gone' })).toBe(false);
    expect(await agreesGone({})).toBe(false);
  });
});

describe('quorum lease: whom a round asks', () => {
  async function askedWith(heard: Set<string>, listed?: Set<string>): Promise<string[]> {
    const asked: string[] = [];
    const { clock, lease } = leaseOf(['m1', 'm2', 'm3', 'm4', 'm5', 'm6'], (peer) => (asked.push(peer), silentAnswer()), () => [], {
      heard: (peer) => heard.has(peer),
      ...(listed === undefined ? {} : { listed: (peer: string) => listed.has(peer) }),
    });
    lease.want(true);
    await clock.advanceAsync(1);
    return [...asked].sort();
  }

  it('in a small set (the voters) asks every member heard from or listed, though those heard from are a majority', async () => {
    // Asking only the four heard from, one missed answer would fail the round.
    expect(await askedWith(new Set(['m1', 'm2', 'm3', 'm4']), new Set(['m5']))).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect(await askedWith(new Set(['m1', 'm2', 'm3']), new Set(['m1', 'm6']))).toEqual(['m1', 'm2', 'm3', 'm6']);
  });

  it('asks the members never heard from too when those heard from cannot make a majority (a large fleet just started)', async () => {
    expect(await askedWith(new Set(['m1', 'm2']))).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    expect(await askedWith(new Set())).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  });

  it('then asks only those whose node documents list addresses (one admitted but never started is not dialled)', async () => {
    expect(await askedWith(new Set(['m1']), new Set(['m2', 'm3']))).toEqual(['m1', 'm2', 'm3']);
    expect(await askedWith(new Set(['m1', 'm2']), new Set())).toEqual(['m1', 'm2']);
  });
});

describe('quorum lease: a large fleet', () => {
  it('asks the members needed plus spares each round, and every reachable member while a handover is watched', async () => {
    const peers = Array.from({ length: 99 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    let asked = 0;
    const { clock, lease } = leaseOf(peers, () => (asked++, silentAnswer()), () => []);
    lease.want(true);
    await clock.advanceAsync(1);
    expect(asked).toBe(50 + 16);
    asked = 0;
    lease.watch(['m07']);
    await clock.advanceAsync(250);
    expect(asked).toBe(99);
    // The dead holder's fellow members all answered without holding it alive: a majority with this node.
    expect(lease.quorumAgreesGone('m07')).toBe(true);
  });
});

describe('voters: a node that is not one', () => {
  // Four voters (v1–v4); this node owns or claims singletons but does not vote (docs/PLACEMENT.md §Voters).
  const voters = ['v1', 'v2', 'v3', 'v4'];

  it('holds the lease only while a majority of the voters answered, itself not counted', async () => {
    const answering = new Set(['v1', 'v2']);
    const { clock, lease } = leaseOf([], (peer) => (answering.has(peer) ? silentAnswer() : undefined), () => [], { members: () => voters });
    lease.want(true);
    await clock.advanceAsync(1);
    // Two voters of four: with this node's own word it would be three of five, but it is not a voter.
    expect(lease.valid()).toBe(false);
    answering.add('v3');
    await clock.advanceAsync(250);
    expect(lease.valid()).toBe(true);
  });

  it('counts a majority of the voters’ promises, not its own', async () => {
    const granting = new Set(['v1', 'v2']);
    const { clock, lease } = leaseOf([], (peer, request) => (granting.has(peer) ? grantAll(request) : refuseAll(request, 'rival')), (claims) => claims.map((c) => ({ ...c, granted: true })), { members: () => voters });
    lease.want(true);
    lease.claims.claim(S, 2);
    await clock.advanceAsync(1);
    // Its own promise and two voters' would be three of five; two of the four voters are no majority.
    expect(lease.claims.promised(S, 2)).toBe(false);
    granting.add('v4');
    await clock.advanceAsync(60);
    expect(lease.claims.promised(S, 2)).toBe(true);
  });

  it('agrees a holder is gone only when a majority of the voters hold it gone', async () => {
    const fiveVoters = ['dead', 'v1', 'v2', 'v3', 'v4'];
    // v4 does not answer; `gone` hold the dead holder gone, the others alive.
    const agreesGone = async (gone: string[]): Promise<boolean> => {
      const { clock, lease } = leaseOf([], (peer) => (peer === 'v4' ? undefined : gone.includes(peer) ? silentAnswer() : { ...silentAnswer(), alive: ['dead'] }), () => [], { members: () => fiveVoters });
      lease.watch(['dead']);
      lease.want(true);
      await clock.advanceAsync(1);
      return lease.quorumAgreesGone('dead');
    };
    // Two of five (against one) would make a majority with a voting node; this one does not vote.
    expect(await agreesGone(['v1', 'v2'])).toBe(false);
    expect(await agreesGone(['v1', 'v2', 'v3'])).toBe(true);
  });

  it('asks every voter it has not heard from when those heard from are no majority of the voters', async () => {
    // v1 and v2 heard from: with this node's own word three of five, but of the four voters only two.
    const asked = new Set<string>();
    const { clock, lease } = leaseOf([], (peer) => (asked.add(peer), silentAnswer()), () => [], { members: () => voters, heard: (peer) => peer === 'v1' || peer === 'v2', listed: () => true });
    lease.want(true);
    await clock.advanceAsync(1);
    expect([...asked].sort()).toEqual(voters);
    expect(lease.valid()).toBe(true);
  });
});

describe('voters: while the voter set changes', () => {
  // v3 was revoked and v4 took its place: for a minute a majority of the old set counts too, so a
  // node that has not heard of the change yet (counting v1, v2, v3) cannot hold a majority beside
  // this one (counting v1, v2, v4). This node does not vote.
  const current = ['v1', 'v2', 'v4'];
  const former = [['v1', 'v2', 'v3']];

  it('holds the lease and a claim only with a majority of both sets, and asks the voters of both', async () => {
    const granting = new Set(['v2', 'v4']);
    const asked = new Set<string>();
    let formerSets: readonly (readonly string[])[] = former;
    const { clock, lease } = leaseOf([], (peer, request) => (asked.add(peer), granting.has(peer) ? grantAll(request) : undefined), () => [], { members: () => current, formerMembers: () => formerSets });
    lease.want(true);
    lease.claims.claim(S, 3);
    await clock.advanceAsync(1);
    expect([...asked].sort()).toEqual(['v1', 'v2', 'v3', 'v4']);
    // Two of the new set, one of the old: neither the lease nor the claim holds.
    expect(lease.valid()).toBe(false);
    expect(lease.claims.promised(S, 3)).toBe(false);
    granting.add('v1');
    await clock.advanceAsync(60);
    expect(lease.valid()).toBe(true);
    expect(lease.claims.promised(S, 3)).toBe(true);
    // The minute is over: the old set counts no more.
    granting.delete('v1');
    formerSets = [];
    await clock.advanceAsync(TERM_MS + 250);
    expect(lease.valid()).toBe(true);
    expect(lease.claims.promised(S, 3)).toBe(true);
  });
});
