import { POOL_ASK_TIMEOUT_MS, type PoolAnswer, type PoolRequest, askPools } from '../actors/index.ts';
import { DESIRED_CATALOG_DOC_ID, type Pool } from '../crdt-schema/index.ts';
import { type SeededRandom, signDecision, signDesiredEntry, toBase64Url } from '../mesh/index.ts';
import { SCENARIO_OWNER } from './clock.ts';
import { ClaimLedger } from './claim-ledger.ts';
import type { SimFleet, SimNode } from './fleet.ts';
import type { InvariantResult } from './runner.ts';

/** The simulated pool: every node labelled `pool=sim` is a member. */
export const SIM_POOL: Pool = { name: 'sim', template: 'sim', target: 3, min: 0, max: 10, lifecycle: 'ephemeral', status: 'active' };
/** Bursts of concurrent acquires come this often (virtual time, uniform between the two). */
const BURST_EVERY_MS = { min: 500, max: 2_000 };
/** At most this many acquires at once, each through a different node. */
const BURST_MAX = 3;
/** A claim is held this long before its release is asked for. */
const HOLD_MS = { min: 500, max: 5_000 };
/** Share of releases given back for reuse (ready at once) rather than drained. */
const REUSE_SHARE = 0.8;
/** Share of acquires that failed as unavailable and are asked again (same claim id, through another node). */
const RETRY_SHARE = 0.75;
/**
 * Share of acquires made by an impatient client: it gives up after {@link IMPATIENT_MS} (the API
 * waits {@link POOL_ASK_TIMEOUT_MS}) and asks again with the same claim id, so a retry lands on
 * another node (and often another owner) while the first ask may still be under way.
 */
const IMPATIENT_SHARE = 0.5;
const IMPATIENT_MS = 1_500;
const ACQUIRE_ATTEMPTS_MAX = 3;
const RELEASE_ATTEMPTS_MAX = 10;
const RETRY_AFTER_MS = { min: 200, max: 1_000 };

/** A node that runs, with its core and control plane. */
type LiveNode = SimNode & { node: NonNullable<SimNode['node']>; plane: NonNullable<SimNode['plane']> };

/**
 * The operator's pool workload and the pool invariants (docs/SIMULATION.md §Tasks and pools).
 * The pool is defined and its members labelled as the API does it (an operator-signed catalog
 * entry, operator-signed label decisions); acquires and releases go through random live nodes as
 * `POST /api/v1/pools/acquire|release` sends them (`askPools` on that node's control plane).
 *
 * Who holds a member is judged (by a {@link ClaimLedger}) from what the fleet says and records:
 * every claim answered, and every claim record any live node holds (a member's own `held`, an
 * owner's `claims`), looked at after every virtual instant; a claim ends when a release of it is
 * answered or recorded (released, reused, recycled, errored) anywhere.
 */
export class PoolWatch {
  readonly #fleet: SimFleet;
  readonly #random: SeededRandom;
  readonly #startMs: number;
  readonly #line: (text: string) => void;
  /** The pools views last looked at, per (node, writer): one not changed since is skipped. */
  readonly #seen = new Map<string, unknown>();
  readonly #ledger: ClaimLedger;
  readonly counts = { acquires: 0, claimed: 0, refused: 0, unavailable: 0, retries: 0, releases: 0, released: 0 };
  #seq = 0;
  #timer: number | undefined;

  constructor(fleet: SimFleet, random: SeededRandom, startMs: number, line: (text: string) => void) {
    this.#fleet = fleet;
    this.#random = random;
    this.#startMs = startMs;
    this.#line = line;
    this.#ledger = new ClaimLedger((peer) => {
      const index = fleet.nodes.findIndex((n) => n.peer === peer);
      return index < 0 ? peer : `n${index}`;
    });
  }

  #now(): number {
    return this.#fleet.clock.now() - this.#startMs;
  }

  #live(): LiveNode[] {
    return this.#fleet.nodes.filter((n): n is LiveNode => n.node !== undefined && n.plane !== undefined && n.node.fleet() !== undefined);
  }

  /**
   * Defines the pool and labels `members` (node indexes) `pool=sim`, through node `via`, as an
   * operator would; resolves when all are recorded (run virtual time meanwhile).
   */
  async define(members: readonly number[], via = 0): Promise<void> {
    const operator = this.#fleet.operator;
    const key = this.#fleet.operatorKey;
    const node = this.#fleet.nodes[via]!;
    if (operator === undefined || key === undefined || node.node === undefined) throw new Error(`node ${via} cannot record the pool: it is down`);
    const pool = { ...SIM_POOL, target: Math.max(1, Math.min(SIM_POOL.max, members.length)) };
    await node.node.desired.record([signDesiredEntry(operator, this.#fleet.fleetId, DESIRED_CATALOG_DOC_ID, [{ op: 'put', kind: 'pool', value: pool }], node.clock.now())]);
    const signer = { seed: key.seed, publicKey: toBase64Url(key.publicKey) };
    for (const index of members) {
      await node.node.decide(signDecision(signer, this.#fleet.fleetId, 'labels', { node: this.#fleet.nodes[index]!.peer, set: { pool: SIM_POOL.name }, remove: [] }, node.clock.now()));
    }
    this.#line(`${this.#now()} pool ${SIM_POOL.name} defined with members ${members.join(',')}`);
  }

  /** Starts the bursts of acquires (each claim released after a while), until {@link PoolWatch.stop}. */
  start(): void {
    if (this.#timer !== undefined) return;
    const next = (): void => {
      this.#timer = this.#fleet.clock.schedule(SCENARIO_OWNER, () => {
        this.#burst();
        next();
      }, this.#between(BURST_EVERY_MS));
    };
    next();
  }

  /** No more acquires (releases and retries under way go on). */
  stop(): void {
    if (this.#timer !== undefined) this.#fleet.clock.cancel(this.#timer);
    this.#timer = undefined;
  }

  #between(range: { readonly min: number; readonly max: number }): number {
    return range.min + this.#random.int(range.max - range.min + 1);
  }

  #later(ms: number, work: () => void): void {
    this.#fleet.clock.schedule(SCENARIO_OWNER, work, ms);
  }

  #burst(): void {
    const live = this.#live();
    const count = Math.min(live.length, 1 + this.#random.int(BURST_MAX));
    const chosen: LiveNode[] = [];
    while (chosen.length < count) {
      const node = live[this.#random.int(live.length)]!;
      if (!chosen.includes(node)) chosen.push(node);
    }
    for (const via of chosen) this.#acquire(via, `c-${this.#seq++}`, 1);
  }

  /** Asks through `via` as the API does; the promise never settles if `via` dies meanwhile. */
  #ask(via: LiveNode, request: PoolRequest, timeoutMs = POOL_ASK_TIMEOUT_MS): Promise<Exclude<PoolAnswer, { type: 'busy' }> | { readonly type: 'failed'; readonly message: string }> {
    return askPools(via.plane, via.clock, via.peer, request, timeoutMs).catch((error: unknown) => ({ type: 'failed' as const, message: String(error) }));
  }

  #acquire(via: LiveNode, claimId: string, attempt: number): void {
    this.counts.acquires++;
    if (attempt > 1) this.counts.retries++;
    this.#line(`${this.#now()} acquire ${claimId} through ${via.index} (attempt ${attempt})`);
    const timeoutMs = this.#random.float() < IMPATIENT_SHARE ? IMPATIENT_MS : POOL_ASK_TIMEOUT_MS;
    void this.#ask(via, { type: 'acquire', pool: SIM_POOL.name, requestId: claimId, via: via.peer }, timeoutMs).then((answer) => {
      this.#line(`${this.#now()} acquire ${claimId}: ${answer.type}${answer.type === 'claimed' ? ` ${answer.member}` : ''}`);
      if (answer.type === 'claimed') {
        this.counts.claimed++;
        this.#ledger.answered(this.#now(), claimId, answer.member);
        this.#later(this.#between(HOLD_MS), () => this.#release(answer.member, claimId, 1));
        return;
      }
      const unavailable = answer.type === 'failed' || (answer.type === 'refused' && answer.reason === 'unavailable');
      if (!unavailable) {
        this.counts.refused++;
        return;
      }
      this.counts.unavailable++;
      if (attempt >= ACQUIRE_ATTEMPTS_MAX || this.#random.float() >= RETRY_SHARE) return;
      this.#later(this.#between(RETRY_AFTER_MS), () => {
        const live = this.#live();
        const others = live.filter((n) => n.index !== via.index);
        const next = (others.length > 0 ? others : live)[this.#random.int(Math.max(1, (others.length > 0 ? others : live).length))];
        if (next !== undefined) this.#acquire(next, claimId, attempt + 1);
      });
    });
  }

  /** Asks for `member`'s release (its claim `claimId`) through a random live node, again while unanswered. */
  #release(member: string, claimId: string, attempt: number): void {
    if (this.#ledger.hasEnded(member, claimId)) return;
    const live = this.#live();
    if (live.length === 0) return;
    const via = live[this.#random.int(live.length)]!;
    const reuse = this.#random.float() < REUSE_SHARE;
    this.counts.releases++;
    this.#line(`${this.#now()} release ${claimId} (${member}) through ${via.index}${reuse ? ' for reuse' : ''}`);
    void this.#ask(via, { type: 'release', pool: SIM_POOL.name, member, requestId: `r-${this.#seq++}`, via: via.peer, ...(reuse ? { reuse: true } : {}) }).then((answer) => {
      this.#line(`${this.#now()} release ${claimId}: ${answer.type}${answer.type === 'released' ? ` ${answer.claimId}` : ''}`);
      if (answer.type === 'released') {
        this.counts.released++;
        this.#ledger.ended(answer.member, answer.claimId);
        return;
      }
      // Not answered, or the owner did not see the claim (its records lag): asked again later.
      if (attempt < RELEASE_ATTEMPTS_MAX) this.#later(this.#between(RETRY_AFTER_MS) * 2, () => this.#release(member, claimId, attempt + 1));
    });
  }

  /**
   * After every virtual instant: the pools documents every live node holds, looked at where they
   * changed; claims that ended first (a record of the end and of the next claim can arrive
   * together), then claims.
   */
  onInstant(): void {
    const ended: Array<[string, string]> = [];
    const claimed: Array<[string, string, string]> = [];
    for (const observer of this.#fleet.nodes) {
      const node = observer.node;
      if (node === undefined) continue;
      for (const writer of this.#fleet.nodes) {
        const view = node.pools.of(writer.peer);
        const key = `${observer.index} ${writer.index}`;
        if (this.#seen.get(key) === view) continue;
        this.#seen.set(key, view);
        for (const record of view.claims.values()) {
          if (record.pool !== SIM_POOL.name) continue;
          if (record.state === 'claimed') claimed.push([record.member, record.claimId, `recorded by n${writer.index} as owner, seen on n${observer.index}`]);
          else ended.push([record.member, record.claimId]);
        }
        const held = view.held;
        if (held === undefined || held.pool !== SIM_POOL.name) continue;
        if (held.state === 'claimed') claimed.push([writer.peer, held.claimId, `held by the member, seen on n${observer.index}`]);
        else ended.push([writer.peer, held.claimId]);
      }
    }
    for (const [member, claimId] of ended) this.#ledger.ended(member, claimId);
    for (const [member, claimId, source] of claimed) this.#ledger.seen(this.#now(), member, claimId, source);
  }

  invariants(): InvariantResult[] {
    const c = this.counts;
    const { memberViolations: member, claimViolations: claim } = this.#ledger;
    const summary = `${c.acquires} acquires (${c.retries} retried), ${c.claimed} claimed, ${c.refused} refused, ${c.unavailable} unavailable; ${c.released} of ${c.releases} releases answered`;
    return [
      { name: 'pool-member-one-claim', ok: member.length === 0, detail: member.length === 0 ? `no member held by two claims: ${summary}` : member.join('; ') },
      {
        name: 'claim-id-one-member',
        ok: claim.length === 0,
        detail: claim.length === 0 ? `${this.#ledger.claims} claim ids, each answered and recorded with one member` : claim.join('; '),
      },
    ];
  }
}
