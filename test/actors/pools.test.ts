import { describe, expect, it } from 'vitest';
import { CLAIM_RECORD_DELAY_MS, ControlPlane, POOLS_SINGLETON, type PoolAnswer, PoolMemberAgent, type PoolsView, askPools, planClaim, poolPorts, poolsSpec, poolsView } from '../../actors/index.ts';
import { type Pool, type PoolClaimRecord, type PoolMemberInput, poolMembers } from '../../crdt-schema/index.ts';
import { type FleetNode, MemoryLogger, signDecision, signDesiredEntry, toBase64Url } from '../../mesh/index.ts';
import { Fleet } from '../helpers/memory-fleet.ts';

const POOL: Pool = { name: 'web', template: 'web-server', target: 2, min: 0, max: 10, lifecycle: 'ephemeral', status: 'active' };

/** A fleet of `size` nodes on virtual time, each with the pools singleton, its ports and the member executors; `labelled` carry pool=web. */
async function poolFleet(size: number, labelled: readonly number[]) {
  const fleet = new Fleet();
  const nodes: FleetNode[] = [await fleet.found(0)];
  for (let i = 1; i < size; i++) nodes.push(await fleet.join(i, 0, `token-${i}`));
  const planes: ControlPlane[] = nodes.map((node) => {
    const plane: ControlPlane = new ControlPlane({
      node,
      transport: fleet.network.lookup(node.peer)!,
      clock: fleet.clock,
      log: new MemoryLogger(),
      singletons: [poolsSpec()],
      ports: poolPorts(node, fleet.clock, () => plane),
    });
    new PoolMemberAgent({ node, clock: fleet.clock }).register(plane);
    return plane;
  });
  const operator = { seed: fleet.operatorKeys.seed, publicKey: toBase64Url(fleet.operatorKeys.publicKey) };
  await fleet.pumpUntil(nodes[0]!.desired.record([signDesiredEntry({ ...fleet.operator, seed: fleet.operatorKeys.seed }, fleet.fleetId, 'desired/catalog', [{ op: 'put', kind: 'pool', value: POOL }], fleet.clock.now())]));
  const label = (i: number): Promise<void> => fleet.pumpUntil(nodes[0]!.decide(signDecision(operator, fleet.fleetId, 'labels', { node: nodes[i]!.peer, set: { pool: 'web' }, remove: [] }, fleet.clock.now())));
  for (const i of labelled) await label(i);
  await fleet.run(4_000);
  for (const plane of planes) await fleet.pumpUntil(plane.start());
  await fleet.run(5_000);
  const alive = new Set(nodes.map((_, i) => i));
  let seq = 0;
  const acquire = (via: number, timeoutMs = 5_000): Promise<PoolAnswer> =>
    askPools(planes[via]!, fleet.clock, nodes[via]!.peer, { type: 'acquire', pool: 'web', requestId: `c-${via}-${seq++}`, via: nodes[via]!.peer }, timeoutMs);
  const release = (via: number, member: string): Promise<PoolAnswer> =>
    askPools(planes[via]!, fleet.clock, nodes[via]!.peer, { type: 'release', pool: 'web', requestId: `r-${seq++}`, member, via: nodes[via]!.peer });
  /** Many at once; a refusal by PoolUnavailableError comes back as its message. */
  const all = async (asks: Array<Promise<PoolAnswer>>): Promise<Array<PoolAnswer | string>> =>
    fleet.pumpUntil(Promise.all(asks.map((a) => a.catch((error: Error) => `${error.name}: ${error.message}`))));
  const owner = (): number => planes.findIndex((plane, i) => alive.has(i) && plane.placement.isActive(POOLS_SINGLETON));
  const crash = async (i: number): Promise<void> => {
    alive.delete(i);
    await fleet.network.lookup(nodes[i]!.peer)!.stop();
  };
  const view = (i: number): PoolsView => poolsView(nodes[i]!, planes[i]!, fleet.clock);
  return { fleet, nodes, planes, acquire, release, all, owner, crash, alive, view, label };
}

const claimedMembers = (answers: ReadonlyArray<PoolAnswer | string>): string[] => answers.flatMap((a) => (typeof a !== 'string' && a.type === 'claimed' ? [a.member] : []));

describe('pool claims', () => {
  it('gives concurrent acquires from different nodes different members, refuses the one beyond the ready members, and every node sees the claims', async () => {
    const { fleet, nodes, acquire, all, view, alive } = await poolFleet(5, [1, 2, 3]);
    const answers = await all([acquire(0), acquire(1), acquire(2), acquire(4)]);
    const claimed = claimedMembers(answers);
    expect(claimed).toHaveLength(3);
    expect(new Set(claimed)).toEqual(new Set([1, 2, 3].map((i) => nodes[i]!.peer)));
    const refused = answers.find((a) => typeof a !== 'string' && a.type === 'refused');
    expect(refused).toMatchObject({ type: 'refused', reason: 'no-ready-member', message: expect.stringMatching(/pool web has no ready member \(3 claimed\)/) });
    await fleet.run(1_000);
    for (const i of alive) expect(view(i).members.map((m) => m.state)).toEqual(['claimed', 'claimed', 'claimed']);
    const events = nodes[0]!.events.list({ kind: 'pool.claimed' });
    expect(events).toHaveLength(3);
    // A member's own record holds its claim too.
    for (const i of [1, 2, 3]) expect(nodes[i]!.pools.of(nodes[i]!.peer).held).toMatchObject({ pool: 'web', state: 'claimed' });
  });

  it('answers a release asked again under its request id as done, not as "not claimed"', async () => {
    const { fleet, nodes, planes, acquire, all } = await poolFleet(3, [1, 2]);
    const [first] = await all([acquire(0)]);
    expect(first).toMatchObject({ type: 'claimed' });
    const member = (first as { member: string; claimId: string }).member;
    // As the API does when an answer is lost or late: the same request again.
    const again = (via: number, requestId: string) => askPools(planes[via]!, fleet.clock, nodes[via]!.peer, { type: 'release', pool: 'web', requestId, member, via: nodes[via]!.peer, reuse: true });
    const done = { type: 'released', pool: 'web', member, claimId: (first as { claimId: string }).claimId, reuse: true };
    expect(await all([again(2, 'r-same')])).toEqual([done]);
    await fleet.run(500);
    expect(await all([again(1, 'r-same')])).toEqual([done]);
    // Another request for a member no longer claimed is refused, as before.
    expect(await all([again(2, 'r-other')])).toEqual([{ type: 'refused', reason: 'not-claimed', message: expect.stringMatching(/is ready, not claimed/) }]);
  });

  it('drains a released member (not handed out again until it restarts) and logs the release', async () => {
    const { fleet, nodes, acquire, release, all, view } = await poolFleet(3, [1, 2]);
    const [first] = await all([acquire(0)]);
    expect(first).toMatchObject({ type: 'claimed' });
    const member = (first as { member: string }).member;
    expect(await all([release(2, member)])).toEqual([{ type: 'released', pool: 'web', member, claimId: (first as { claimId: string }).claimId, reuse: false }]);
    await fleet.run(1_000);
    expect(view(1).members.find((m) => m.member === member)?.state).toBe('draining');
    // The member is not told: its own record still names the claim, which the owner's record ends.
    expect(nodes[member === nodes[1]!.peer ? 1 : 2]!.pools.of(member).held).toMatchObject({ state: 'claimed', claimId: (first as { claimId: string }).claimId });
    const next = await all([acquire(1), acquire(2)]);
    expect(claimedMembers(next)).toEqual([nodes[1]!.peer, nodes[2]!.peer].filter((peer) => peer !== member));
    expect(next.find((a) => typeof a !== 'string' && a.type === 'refused')).toMatchObject({ reason: 'no-ready-member', message: expect.stringMatching(/1 claimed, 1 draining/) });
    expect(nodes[0]!.events.list({ kind: 'pool.released' })).toHaveLength(1);
    // Releasing what is not claimed is refused with the reason.
    expect(await all([release(0, member)])).toEqual([{ type: 'refused', reason: 'not-claimed', message: expect.stringMatching(/is draining, not claimed/) }]);
  });

  it('ends a claim given back for reuse by the owner\'s record alone: no order to the member, and its next claim replaces the one it still names', async () => {
    const { fleet, nodes, planes, acquire, all, view } = await poolFleet(3, [1]);
    const orders: string[] = [];
    for (const plane of planes) {
      const order = plane.order.bind(plane);
      plane.order = (...args: Parameters<ControlPlane['order']>) => {
        orders.push(args[3]);
        return order(...args);
      };
    }
    const member = nodes[1]!.peer;
    const [first] = await all([acquire(0)]);
    expect(first).toMatchObject({ type: 'claimed', member });
    const releaseAsk = askPools(planes[2]!, fleet.clock, nodes[2]!.peer, { type: 'release', pool: 'web', requestId: 'r-reuse', member, via: nodes[2]!.peer, reuse: true });
    expect(await all([releaseAsk])).toEqual([{ type: 'released', pool: 'web', member, claimId: (first as { claimId: string }).claimId, reuse: true }]);
    await fleet.run(1_000);
    expect(orders).toEqual(['pool.claim']);
    expect(nodes[1]!.pools.of(member).held).toMatchObject({ state: 'claimed', claimId: (first as { claimId: string }).claimId });
    for (const i of [0, 1, 2]) expect(view(i).members.map((m) => m.state)).toEqual(['ready']);
    // Claimed again (through another node): the order names the claim it held as replaced, and it takes the new one.
    const [second] = await all([acquire(2)]);
    expect(second).toMatchObject({ type: 'claimed', member });
    expect(nodes[1]!.pools.of(member).held).toMatchObject({ state: 'claimed', claimId: (second as { claimId: string }).claimId });
    await fleet.run(1_000);
    for (const i of [0, 1, 2]) expect(view(i).members.map((m) => m.state)).toEqual(['claimed']);
  });

  it("takes a member given back for reuse as ready while the owner's copy of its record still names the claim before", async () => {
    const { fleet, nodes, planes, acquire, all, owner } = await poolFleet(3, [1]);
    const member = nodes[1]!.peer;
    const reuse = (via: number, requestId: string) => askPools(planes[via]!, fleet.clock, nodes[via]!.peer, { type: 'release', pool: 'web', requestId, member, via: nodes[via]!.peer, reuse: true });
    const [first] = await all([acquire(0)]);
    expect(first).toMatchObject({ type: 'claimed', member });
    await all([reuse(0, 'r-first')]);
    await fleet.run(1_000);
    // The owner's copy of the member's document as it was before the next claim (naming the first).
    const records = nodes[owner()]!.pools;
    const readAll = records.all.bind(records);
    const before = readAll().get(member)!;
    const [second] = await all([acquire(2)]);
    expect(second).toMatchObject({ type: 'claimed', member });
    // The member's record of the second claim is late to reach the owner (its push, on another stream than its answer).
    records.all = () => new Map([...readAll()].map(([peer, view]) => [peer, peer === member ? before : view]));
    expect(await all([reuse(0, 'r-second')])).toEqual([{ type: 'released', pool: 'web', member, claimId: (second as { claimId: string }).claimId, reuse: true }]);
    expect(await all([acquire(0)])).toEqual([expect.objectContaining({ type: 'claimed', member })]);
  });

  it("writes the owner's record of a claim CLAIM_RECORD_DELAY_MS after the answer, or only its give-back's record when that comes first", async () => {
    const { fleet, nodes, planes, acquire, all, owner, view } = await poolFleet(3, [1, 2]);
    const first = owner();
    const written: string[] = [];
    const records = nodes[first]!.pools;
    const recordClaims = records.recordClaims.bind(records);
    records.recordClaims = (claims) => {
      written.push(...claims.map((c) => `${c.claimId} ${c.state}`));
      return recordClaims(claims);
    };
    const reuse = (member: string, requestId: string) => askPools(planes[0]!, fleet.clock, nodes[0]!.peer, { type: 'release', pool: 'web', requestId, member, via: nodes[0]!.peer, reuse: true });
    // Given back at once: one record, the give-back's (it names the claim, its time and what it was for).
    const [quick] = (await all([acquire(0)])) as Array<{ member: string; claimId: string }>;
    // Not written yet, but every view of the owner (its API's too) reads it.
    expect(view(first).members.find((m) => m.member === quick!.member)).toMatchObject({ state: 'claimed', record: { claimId: quick!.claimId, state: 'claimed' } });
    expect(written).toEqual([]);
    await all([reuse(quick!.member, 'r-quick')]);
    expect(written).toEqual([`${quick!.claimId} reused`]);
    await fleet.run(2 * CLAIM_RECORD_DELAY_MS);
    expect(written).toEqual([`${quick!.claimId} reused`]);
    // Kept: its record is written once the delay has passed, and every node reads it.
    const [kept] = (await all([acquire(0)])) as Array<{ member: string; claimId: string }>;
    await fleet.run(CLAIM_RECORD_DELAY_MS + 50);
    expect(written).toEqual([`${quick!.claimId} reused`, `${kept!.claimId} claimed`]);
    await fleet.run(1_000);
    for (const i of [0, 1, 2]) expect(view(i).members.find((m) => m.member === kept!.member)).toMatchObject({ state: 'claimed', record: { claimId: kept!.claimId, state: 'claimed' } });
  });

  it('continues after the owner crashes mid-stream without handing out a claimed member again', async () => {
    const { fleet, nodes, acquire, all, owner, crash, alive, view } = await poolFleet(5, [0, 1, 2, 3, 4]);
    const first = owner();
    const others = [0, 1, 2, 3, 4].filter((i) => i !== first);
    // Two claims answered, then the owner dies at once: its records may not have spread.
    const before = claimedMembers(await all([acquire(others[0]!), acquire(others[1]!)]));
    expect(before).toHaveLength(2);
    await crash(first);
    const after = await all([acquire(others[2]!, 20_000), acquire(others[3]!, 20_000), acquire(others[0]!, 20_000)]);
    const next = owner();
    expect(next).toBeGreaterThanOrEqual(0);
    expect(next).not.toBe(first);
    const later = claimedMembers(after);
    const claimed = [...before, ...later];
    // Every claim a different member; none after the crash is the crashed owner (down now).
    expect(new Set(claimed).size).toBe(claimed.length);
    expect(later).not.toContain(nodes[first]!.peer);
    const readyLeft = 4 - before.filter((m) => m !== nodes[first]!.peer).length;
    expect(later).toHaveLength(Math.min(3, readyLeft));
    await fleet.run(1_000);
    for (const i of alive) expect(view(i).members.filter((m) => m.state === 'claimed').map((m) => m.member).sort()).toEqual([...claimed].sort());
  });

  it('answers a retry through the new owner with the claim the member took when the owner died recording it', async () => {
    const { fleet, nodes, planes, acquire, all, owner, crash, label } = await poolFleet(5, []);
    const first = owner();
    for (const i of [0, 1, 2, 3, 4].filter((n) => n !== first)) await label(i);
    await fleet.run(1_000);
    const via = (first + 1) % 5;
    // The owner dies as the member's answer comes back (before it answers, or writes its own
    // record, which follows the answer): the member holds the claim, the asker never heard back.
    const dying = planes[first]!;
    const orderOf = dying.order.bind(dying);
    dying.order = async (...args: Parameters<ControlPlane['order']>) => {
      const answer = await orderOf(...args);
      if (args[3] !== 'pool.claim') return answer;
      await crash(first);
      throw new Error('crashed');
    };
    const [answer] = await all([acquire(via, 20_000)]);
    expect(answer).toMatchObject({ type: 'claimed', claimId: `c-${via}-0` });
    const member = (answer as { member: string }).member;
    const holder = nodes.findIndex((n) => n.peer === member);
    expect(nodes[holder]!.pools.of(member).held).toMatchObject({ claimId: `c-${via}-0`, epoch: 1 });
    expect(owner()).not.toBe(first);
    // And the member refuses any other claim while it holds this one, unless the order names it as replaced.
    const stamp = planes[owner()]!.placement.view().find((v) => v.name === POOLS_SINGLETON)!;
    const order = (body: object) => fleet.pumpUntil(planes[owner()]!.order(member as never, POOLS_SINGLETON, { epoch: stamp.epoch, owner: stamp.owner! }, 'pool.claim', JSON.stringify(body)));
    expect(await order({ pool: 'web', claimId: 'other' })).toMatchObject({ accepted: true, result: { held: false, current: { claimId: `c-${via}-0` } } });
    expect(await order({ pool: 'web', claimId: 'other', replaces: `c-${via}-0` })).toEqual({ accepted: true, result: { held: true } });
  });

  it('gives a claim whose member answered into a lost stream to that member alone, never to a second one', async () => {
    // Found by the simulator (pool-claims seed 18, 5 % loss): a member recorded the claim, its
    // answer was lost, the owner's copy of the member's record had not arrived yet, and the owner
    // gave the same claim id to a second member too.
    const { fleet, nodes, planes, acquire, all, owner } = await poolFleet(5, [1, 2, 3]);
    const first = owner();
    const plane = planes[first]!;
    const records = nodes[first]!.pools;
    const order = plane.order.bind(plane);
    const readAll = records.all.bind(records);
    let lostTo: string | undefined;
    let lagUntil = 0;
    plane.order = async (...args: Parameters<ControlPlane['order']>) => {
      const answer = await order(...args);
      if (args[3] !== 'pool.claim' || lostTo !== undefined) return answer;
      lostTo = args[0];
      lagUntil = fleet.clock.now() + 1_500;
      throw new Error('the actor stream failed: the remote reset the stream');
    };
    // Until then the owner holds the member's pools document as it was before the claim.
    records.all = () => new Map([...readAll()].map(([peer, view]) => [peer, peer === lostTo && fleet.clock.now() < lagUntil ? { claims: view.claims } : view]));
    const [answer] = await all([acquire(first === 0 ? 4 : 0, 10_000)]);
    expect(answer).toMatchObject({ type: 'claimed', member: lostTo });
    await fleet.run(2_000);
    const claimId = (answer as { claimId: string }).claimId;
    const holders = nodes.filter((node) => node.pools.of(node.peer).held?.claimId === claimId).map((node) => node.peer);
    expect(holders).toEqual([lostTo]);
  });

  it("answers once the member has stored the claim durably, with the owner's own record in its view but not waiting for it to be stored", async () => {
    const { fleet, nodes, acquire, all, owner, view } = await poolFleet(5, [1, 2, 3]);
    const first = owner();
    const log: string[] = [];
    for (const [i, node] of nodes.entries()) {
      const recordHeld = node.pools.recordHeld.bind(node.pools);
      node.pools.recordHeld = (held, options) => recordHeld(held, options).then(() => void log.push(`member ${i} stored`));
    }
    // The owner's record is made in memory at once, but its storing takes 2 s (less than an ask waits).
    const records = nodes[first]!.pools;
    const recordClaims = records.recordClaims.bind(records);
    records.recordClaims = (claims) => {
      const stored = recordClaims(claims);
      return new Promise<void>((resolve) => fleet.clock.setTimeout(resolve, 2_000)).then(() => stored).then(() => void log.push('owner stored'));
    };
    const [answer] = await all([
      acquire(first === 0 ? 4 : 0).then((a) => {
        log.push('answered');
        if (a.type === 'claimed') log.push(`owner sees ${view(first).members.find((m) => m.member === a.member)?.state}`);
        return a;
      }),
    ]);
    expect(answer).toMatchObject({ type: 'claimed' });
    await fleet.run(6_000);
    const holder = nodes.findIndex((node) => node.peer === (answer as { member: string }).member);
    expect(log).toEqual([`member ${holder} stored`, 'answered', 'owner sees claimed', 'owner stored']);
  });

  it('lets no node on a partitioned minority claim, while the majority goes on claiming', async () => {
    const { fleet, acquire, all, owner } = await poolFleet(5, [0, 1, 2, 3, 4]);
    const first = owner();
    const minority = [first, (first + 1) % 5];
    const majority = [0, 1, 2, 3, 4].filter((i) => !minority.includes(i));
    fleet.partition(minority, majority);
    await fleet.run(3_000);
    const answers = await all([acquire(minority[0]!, 3_000), acquire(minority[1]!, 3_000), acquire(majority[0]!, 15_000)]);
    expect(answers[0]).toMatch(/PoolUnavailableError: no owner of control.pools answered within 3000 ms/);
    expect(answers[1]).toMatch(/PoolUnavailableError/);
    expect(answers[2]).toMatchObject({ type: 'claimed' });
    expect(minority.map((i) => String(i))).not.toContain(String(owner()));
  });
});

describe('pool member states and planClaim', () => {
  const member = (peerId: string, extra: Partial<PoolMemberInput> = {}): PoolMemberInput => ({ peerId, name: peerId, alive: true, aliveSince: 0, startedAt: 1_000, labels: { pool: 'web' }, ...extra });
  const fold = (members: PoolMemberInput[], claims: Array<[string, PoolClaimRecord]> = [], now = 10_000) =>
    poolMembers({ pools: [POOL], members, docs: new Map(claims.map(([writer, record]) => [writer, { claims: new Map([[record.member, record]]) }])), now, readyAfterMs: 3_000 });

  it('reads warming, ready, down, claimed, draining until a restart, and ignores members of undefined pools', () => {
    const states = fold([member('a'), member('b', { startedAt: 9_000 }), member('c', { alive: false }), member('d', { labels: { pool: 'other' } })]);
    expect(states.map((m) => [m.member, m.state])).toEqual([['a', 'ready'], ['b', 'warming'], ['c', 'down']]);
    const released: PoolClaimRecord = { pool: 'web', member: 'a', claimId: 'x', state: 'released', epoch: 2, at: 5_000, claimedAt: 4_000, memberStartedAt: 1_000 };
    expect(fold([member('a')], [['o', released]])[0]!.state).toBe('draining');
    expect(fold([member('a', { startedAt: 6_000 })], [['o', released]])[0]!.state).toBe('ready');
    // Given back for reuse: ready at once, its age counted from then.
    expect(fold([member('a')], [['o', { ...released, state: 'reused', at: 9_500 }]])[0]).toMatchObject({ state: 'ready', warmingStartedAt: 9_500 });
    // A claim of a higher epoch wins over a deposed owner's release of the same member.
    const claimed: PoolClaimRecord = { ...released, claimId: 'y', state: 'claimed', epoch: 3, at: 4_000 };
    expect(fold([member('a', { startedAt: 6_000 })], [['o', released], ['p', claimed]])[0]!.state).toBe('claimed');
    // A claimed member that failure detection holds dead stays claimed (its records stand), marked unreachable.
    expect(fold([member('a', { alive: false })], [['p', claimed]])[0]).toMatchObject({ state: 'claimed', unreachable: true });
    expect(fold([member('a', { alive: false })], [['o', released]])[0]).toMatchObject({ state: 'draining', unreachable: true });
    expect(fold([member('a')], [['p', claimed]])[0]!.unreachable).toBeUndefined();
    expect(fold([member('c', { alive: false })])[0]!.unreachable).toBeUndefined();
  });

  it('never plans a member a claim in flight holds, and answers a retried request with its claim', () => {
    const members = fold([member('a', { startedAt: 500 }), member('b')]);
    const seen: PoolsView = { now: 10_000, version: 1, pools: [POOL], members };
    expect(planClaim(seen, { pool: 'web', requestId: 'r1' }, [])).toMatchObject({ type: 'claim', member: { member: 'a' } });
    expect(planClaim(seen, { pool: 'web', requestId: 'r2' }, [{ member: 'a', claimId: 'r1' }])).toMatchObject({ type: 'claim', member: { member: 'b' } });
    expect(planClaim(seen, { pool: 'web', requestId: 'r3' }, [{ member: 'a', claimId: 'r1' }, { member: 'b', claimId: 'r2' }])).toMatchObject({ type: 'answer', answer: { type: 'refused', reason: 'no-ready-member' } });
    expect(planClaim(seen, { pool: 'web', requestId: 'r1' }, [{ member: 'a', claimId: 'r1' }])).toEqual({ type: 'answer', answer: { type: 'busy' } });
    expect(planClaim(seen, { pool: 'nope', requestId: 'r4' }, [])).toMatchObject({ type: 'answer', answer: { reason: 'no-such-pool' } });
  });
});
