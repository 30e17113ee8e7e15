import * as A from '@automerge/automerge';
import { createHash } from 'node:crypto';
import { type DocId, FLEET_DOC_ID, parseDocId } from '../../crdt-schema/index.ts';
import { rememberedIn } from '../bounded-map.ts';
import type { Logger } from '../logger.ts';
import type { Clock, TimerId } from '../ports/clock.ts';
import { type FrameStream, type PeerId, ProtocolNotSupportedError, type Transport } from '../ports/transport.ts';
import { type PeerPenalties, WireError, decodeMessage, encodeMessage } from '../wire/index.ts';
import { InProcessVerifier } from '../trust/in-process-verifier.ts';
import { SealVerifier } from '../trust/seal-verifier.ts';
import type { Seal } from '../trust/seals.ts';
import { RefusedChangeError, verifyIncoming } from './authority.ts';
import { coveredBySeals, sealAuthority } from './seal-coverage.ts';
import { type AnyDoc, type DocStore, DocTooLargeError } from './doc-store.ts';
import { headsDigest } from './record-codec.ts';
import { type Summary, SummaryKeeper, bucketOf, differingBuckets } from './summary.ts';
import { sameList } from '../same-list.ts';
import { MAX_ALSO_PEERS, MAX_HAVE_PER_MESSAGE, MAX_WANT_PER_MESSAGE, PEER_TAG_BYTES, type SyncMessage, syncProtocol } from './sync-protocol.ts';

export interface ReplicatorInit {
  readonly transport: Transport;
  readonly store: DocStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly penalties: PeerPenalties;
  /** The fleet this node belongs to; peers of another fleet are refused. */
  readonly fleetId: string;
  /** Whether `peer` may replicate with this node (a member, or the node it joined through). */
  readonly isPeerAllowed: (peer: PeerId) => boolean;
  /** Called when a peer's change is refused, for counting and fleet events. */
  readonly onRefused?: (event: { peer: PeerId; docId: string; error: RefusedChangeError }) => void;
  readonly antiEntropyMs?: number;
  /**
   * Whether this node takes in `docId` at all (e.g. `node/<peer>` only for members). A document
   * not accepted now is refused without penalty, and accepted later if it becomes acceptable.
   */
  readonly acceptsDocument?: (docId: DocId) => boolean;
  /** Checks seals (signed heads); in-process by default. */
  readonly sealVerifier?: SealVerifier;
  /**
   * Write authority beyond seals: why the received change that turns `before` into `after` may
   * not be adopted (e.g. a fleet-document change that is not a valid operator decision).
   */
  readonly authorize?: (docId: DocId, before: AnyDoc, after: AnyDoc) => string | undefined;
  /**
   * How many connected peers this node opens sync sessions to on its own initiative (its
   * neighbours, {@link DEFAULT_SYNC_NEIGHBOURS} by default); peers that open one to it are served
   * as well. docs/ARCHITECTURE.md §Sync neighbours.
   */
  readonly neighbours?: number;
}

/** Traffic and state of the replication session with one peer. */
export interface SessionStats {
  readonly peer: PeerId;
  readonly open: boolean;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly snapshotsIn: number;
  readonly refusedIn: number;
  /** Documents this session started over after sync rounds made no progress. */
  readonly resyncs: number;
  readonly lastMessageAt: number | undefined;
}

/** Pending outgoing messages per peer before the session is dropped as too slow. */
const MAX_PENDING_SENDS = 20_000;
/** Messages decoded ahead of handling; the reader waits beyond this. */
const MAX_INBOX = 256;
/** Wanting this many documents at once starts the signature verifier's workers ahead of the batch. */
const PREPARE_VERIFIER_AT = 64;
/** Sync messages on one document that change nothing before a session starts it over. */
const MAX_IDLE_SYNC_ROUNDS = 12;
/** Received sync messages one document may keep waiting (their changes lack dependencies) before it is started over. */
const MAX_WAITING_MESSAGES = 8;
/** Bytes of waiting sync messages one session keeps, over all documents. */
const MAX_WAITING_BYTES = 8 * 1024 * 1024;
const OPEN_RETRY_MS = [250, 1_000, 4_000] as const;
/** How soon a session that ended while its peer is still connected is opened again (doubling). */
const REOPEN_DELAY_MS = 1_000;
const REOPEN_DELAY_MAX_MS = 30_000;
/** Every open session re-sends its summary this often, so any divergence is found. */
export const DEFAULT_ANTI_ENTROPY_MS = 15_000;
/** How long connection and admission changes are gathered before the neighbours are chosen again. */
export const RECONCILE_SETTLE_MS = 250;
/** Documents one peer may make this node track (sync states, known digests) before it is cut off. */
const MAX_DOCS_PER_SESSION = 100_000;
/**
 * Connected peers a node opens sync sessions to itself: the ones with the lowest rendezvous
 * score. With the peers that choose it, a node syncs with about twice this many, whatever the
 * fleet's size; changes flood over that graph and reach every node in a few hops.
 */
export const DEFAULT_SYNC_NEIGHBOURS = 4;
/** How long other sessions' offers of a document wait for the copy one session asked for. */
const FETCH_WAIT_MS = 2_000;
/**
 * How long a session gathers the documents it did not relay to its peer (the peer was sent them
 * by the node they came from) before it tells the peer which versions it holds, in one `have`.
 */
export const HAVE_DELAY_MS = 1_000;
/**
 * How long a session waits before it acknowledges changes that left it holding exactly what the
 * peer holds (a sync message that only names its new heads): changes the peer pushes meanwhile are
 * acknowledged by the same message. Anything else this node sends about the document acknowledges
 * them too.
 */
export const ACK_DELAY_MS = 100;
/** Documents remembered as held exactly as a peer pushed them (with the peers it pushed them to), until the next flush. */
const MAX_COVERED = 10_000;
/** Documents pushed in batches (event buckets), and how long a batch gathers changes. */
const BATCHED_PREFIX = 'events/';
export const EVENT_PUSH_BATCH_MS = 100;
/** Rendezvous scores remembered, one per peer seen connected. */
const MAX_SCORES = 100_000;

/** The document as it was before anything was received, for one not held yet (read, never changed). */
const NOTHING_HELD: AnyDoc = A.init<Record<string, unknown>>();

/** How near `peer` is to `self` when `self` chooses its sync neighbours (lower is nearer): a hash of both ids. */
export function neighbourScore(self: string, peer: string): number {
  return createHash('sha256').update(self).update('\u0000').update(peer).digest().readUInt32BE(0);
}

/** Tags by peer id ({@link peerTag}). */
const peerTags = new Map<string, { readonly tag: Uint8Array; readonly key: string }>();
const MAX_PEER_TAGS = 100_000;

/**
 * A peer's tag in a sync message's `also` — the first {@link PEER_TAG_BYTES} bytes of SHA-256 of
 * its id — with its hex form (the key {@link alsoTags} gives). Kept per peer id: a session is
 * opened to some peer every anti-entropy round, and hashing its id again each time was 4 % of a
 * large simulated fleet's steady state.
 */
function peerTag(peer: string): { readonly tag: Uint8Array; readonly key: string } {
  return rememberedIn(peerTags, peer, MAX_PEER_TAGS, () => {
    const tag = new Uint8Array(createHash('sha256').update(peer).digest().subarray(0, PEER_TAG_BYTES));
    return { tag, key: Buffer.from(tag).toString('hex') };
  });
}

/** The tags of an `also` field, as keys (hex); empty when its length is not a whole number of tags. */
function alsoTags(also: Uint8Array | undefined): ReadonlySet<string> {
  if (also === undefined || also.length % PEER_TAG_BYTES !== 0) return new Set();
  const tags = new Set<string>();
  for (let i = 0; i < also.length; i += PEER_TAG_BYTES) tags.add(Buffer.from(also.subarray(i, i + PEER_TAG_BYTES)).toString('hex'));
  return tags;
}

/** Runs a timer callback so that an exception is logged, never thrown into the event loop. */
function guarded<Args extends unknown[]>(log: Logger, what: string, callback: (...args: Args) => void): (...args: Args) => void {
  return (...args) => {
    try {
      callback(...args);
    } catch (error) {
      log.error(`${what} failed`, { error: String(error), stack: (error as Error).stack });
    }
  };
}

/**
 * Replicates the store's documents with every allowed connected peer. Each side opens its own
 * stream and speaks only on it; what arrives on the peer's stream is verified on a clone before
 * it is adopted.
 */
export class Replicator {
  readonly #init: ReplicatorInit;
  readonly #sessions = new Map<PeerId, Session>();
  readonly #reopenTimers = new Map<PeerId, TimerId>();
  /** Consecutive sessions per peer that ended without hearing from the peer. */
  readonly #failedSessions = new Map<PeerId, number>();
  /** Documents changed since their last push: at the end of the tick, event buckets every EVENT_PUSH_BATCH_MS. */
  readonly #pushes: PushQueue;
  readonly #eventPushes: PushQueue;
  #antiEntropyTimer: TimerId | undefined;
  #reconcileTimer: TimerId | undefined;
  #unsubscribe: Array<() => void> = [];
  #stopped = false;

  readonly #sealVerifier: SealVerifier;

  /** What this node holds, summarized; follows the store's changes while started. */
  readonly #summaries = new SummaryKeeper();
  /** Each connected peer's rendezvous score with this node (lower is nearer), computed once. */
  readonly #scores = new Map<PeerId, number>();
  /** Peers this node keeps sessions with on its own initiative (see {@link Replicator.neighbours}). */
  #chosen: ReadonlySet<PeerId> = new Set();
  /** This anti-entropy round's extra peer, rotating over the connected ones that are not neighbours. */
  #rotating: PeerId | undefined;
  #rotation = 0;
  /** The allowed peers last sorted by score, and that order ({@link Replicator.#byScore}). */
  #lastByScore: { readonly peers: readonly PeerId[]; readonly byScore: readonly PeerId[] } | undefined;
  /** The last summary sent, as a frame ({@link Replicator.encodedSummary}). */
  #lastSummaryFrame: { readonly count: number; readonly root: string; readonly buckets: Uint8Array; readonly frame: Uint8Array } | undefined;
  /**
   * Documents not held that one session asked for (`want`) after a peer offered them: the same
   * document offered by other neighbours meanwhile waits for that copy instead of being asked for
   * again (in a flood each new document is offered by most neighbours at once).
   */
  readonly #fetching = new Map<DocId, { session: Session; timer: TimerId }>();
  /**
   * Documents held exactly as the peer that pushed them holds them, with the peers that push also
   * went to (tags): the next flush does not relay that version to those (they have it from the
   * same node), only tells them later that it holds it (`have`). Read and cleared by each flush.
   */
  readonly #covered = new Map<DocId, { digest: string; tags: ReadonlySet<string> }>();
  /**
   * Whom the last flush of each document pushed its version to: every sync message about that
   * version says so (the push itself, and an answer that carries the changes a round later).
   */
  readonly #pushedTo = new Map<DocId, { digest: string; also: Uint8Array }>();

  constructor(init: ReplicatorInit) {
    this.#init = init;
    const push = guarded(init.log, 'pushing changes to peers', (docIds: readonly DocId[]) => this.#flush(docIds));
    this.#pushes = new PushQueue(init.clock, 0, push);
    this.#eventPushes = new PushQueue(init.clock, EVENT_PUSH_BATCH_MS, push);
    this.#sealVerifier = init.sealVerifier ?? new SealVerifier(new InProcessVerifier(), init.fleetId);
  }

  start(): void {
    const { transport, store } = this.#init;
    transport.handle(syncProtocol.id, (stream) => this.#onInbound(stream), { maxFrameBytes: syncProtocol.maxFrameBytes });
    this.#unsubscribe.push(
      transport.on('peer:connect', () => this.#reconcileSoon()),
      transport.on('peer:disconnect', (peer) => {
        this.#dropSession(peer);
        // Another connected peer may take the place of a neighbour that went.
        this.#reconcileSoon();
      }),
      store.onChanged(({ docId }) => {
        this.#summaries.note(docId);
        this.#markDirty(docId);
      }),
    );
    // Changes made while stopped were not followed.
    this.#summaries.rescan();
    this.#reconcile();
    this.#scheduleAntiEntropy();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#init.transport.unhandle(syncProtocol.id);
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    const { clock } = this.#init;
    this.#pushes.cancel();
    this.#eventPushes.cancel();
    if (this.#antiEntropyTimer !== undefined) clock.clearTimeout(this.#antiEntropyTimer);
    if (this.#reconcileTimer !== undefined) clock.clearTimeout(this.#reconcileTimer);
    for (const timer of this.#reopenTimers.values()) clock.clearTimeout(timer);
    this.#reopenTimers.clear();
    for (const { timer } of this.#fetching.values()) clock.clearTimeout(timer);
    this.#fetching.clear();
    for (const peer of [...this.#sessions.keys()]) this.#dropSession(peer);
  }

  /**
   * Opens a session with `peer` if it is connected, allowed and has none yet. `accepted`: the peer
   * opened it (its stream arrived first), so this node serves it for as long as the peer keeps it.
   */
  ensureSession(peer: PeerId, accepted = false): void {
    if (this.#stopped || this.#sessions.has(peer) || !this.#init.isPeerAllowed(peer)) return;
    if (!this.#init.transport.connectedPeers().includes(peer)) return;
    const session = new Session(peer, this.#init, this, this.#sealVerifier, accepted);
    this.#sessions.set(peer, session);
    // A session the peer opened opens its own stream once the peer's hello arrives: a stream that
    // the peer reset at once (it closed that session) must not make this node open one back, which
    // the peer would take for a new session, and so on.
    if (!accepted) session.start();
  }

  /**
   * The peers this node syncs with on its own initiative: of the connected peers it may sync
   * with, the {@link ReplicatorInit.neighbours} with the lowest rendezvous score (a hash of both
   * peer ids, so each node's choice is its own and the graph they make is random), and this
   * round's rotating peer. Together with the peers that choose it, that is the graph changes
   * flood over; the rotating peer walks every connection over time, so a graph that the hash
   * happened to cut in two is joined again within a few anti-entropy rounds.
   */
  neighbours(): ReadonlySet<PeerId> {
    return this.#chosen;
  }

  /**
   * Chooses the neighbours again; opens sessions to new ones and closes the ones no side wants any
   * more. `byScore`: the allowed peers, already in score order, when the caller just sorted them.
   */
  #reconcile(byScore?: readonly PeerId[]): void {
    if (this.#stopped) return;
    const allowed = byScore ?? this.#allowed();
    const degree = this.#init.neighbours ?? DEFAULT_SYNC_NEIGHBOURS;
    const nearest = allowed.length <= degree ? allowed : (byScore ?? this.#byScore(allowed)).slice(0, degree);
    const chosen = new Set(nearest);
    if (this.#rotating !== undefined && allowed.includes(this.#rotating)) chosen.add(this.#rotating);
    this.#chosen = chosen;
    for (const [peer, session] of [...this.#sessions]) {
      if (!chosen.has(peer) && !session.accepted) this.#dropSession(peer);
    }
    for (const peer of chosen) this.ensureSession(peer);
  }

  /**
   * @internal Whether `session` may ask for `docId`, which a peer offered and this node does not
   * hold: yes unless another open session asked for it less than {@link FETCH_WAIT_MS} ago.
   */
  claimFetch(docId: DocId, session: Session): boolean {
    const current = this.#fetching.get(docId);
    if (current !== undefined && current.session !== session && this.#sessions.get(current.session.peer) === current.session) return false;
    if (current !== undefined) this.#init.clock.clearTimeout(current.timer);
    const timer = this.#init.clock.setTimeout(guarded(this.#init.log, 'waiting for a requested document', () => this.fetchDone(docId, session)), FETCH_WAIT_MS);
    this.#fetching.set(docId, { session, timer });
    return true;
  }

  /**
   * @internal The copy of `docId` that `session` asked for came (taken in or not), or will not come
   * (the session ended, or it took too long): the offers other sessions held back go on.
   */
  fetchDone(docId: DocId, session: Session): void {
    const current = this.#fetching.get(docId);
    if (current?.session !== session) return;
    this.#init.clock.clearTimeout(current.timer);
    this.#fetching.delete(docId);
    for (const other of [...this.#sessions.values()]) if (other !== session) other.offerWaited(docId);
  }

  /** Moves the rotating peer on to the next connected peer that is not a neighbour (by score, cycling). */
  #rotate(): void {
    const degree = this.#init.neighbours ?? DEFAULT_SYNC_NEIGHBOURS;
    const allowed = this.#allowed();
    const byScore = this.#byScore(allowed);
    const others = byScore.slice(degree);
    this.#rotation = others.length === 0 ? 0 : (this.#rotation + 1) % others.length;
    this.#rotating = others[this.#rotation];
    // The neighbours come from the same peers, sorted once. With no more peers than neighbours
    // they are taken in connection order, unsorted, as #reconcile takes them itself.
    this.#reconcile(allowed.length <= degree ? undefined : byScore);
  }

  /** The connected peers this node may sync with, in connection order. */
  #allowed(): PeerId[] {
    return this.#init.transport.connectedPeers().filter((peer) => this.#init.isPeerAllowed(peer));
  }

  /**
   * `peers` by rendezvous score, nearest first (ties, which a 32-bit score allows, by id); never
   * to be changed by the caller. The same peers in the same order as last time give the same
   * array back without sorting: every anti-entropy round sorts a node's connections, which seldom
   * changed since the round before (a 1,000-node fleet sorts sixty-odd peers a hundred times a
   * simulated second).
   */
  #byScore(peers: readonly PeerId[]): readonly PeerId[] {
    const last = this.#lastByScore;
    if (last !== undefined && sameList(peers, last.peers)) return last.byScore;
    const byScore = [...peers].sort((a, b) => this.#score(a) - this.#score(b) || (a < b ? -1 : 1));
    this.#lastByScore = { peers, byScore };
    return byScore;
  }

  /**
   * @internal A summary message as a frame, encoded once per summary: every session sends the
   * same one (on opening and at every anti-entropy round) until the store changes. Throws as
   * {@link encodeMessage} does.
   */
  encodedSummary(message: SyncMessage & { type: 'summary' }): Uint8Array {
    const { count, root, buckets } = message.body;
    const last = this.#lastSummaryFrame;
    if (last !== undefined && last.buckets === buckets && last.root === root && last.count === count) return last.frame;
    // A copy of just its bytes: the encoder's frame is a view of a larger shared buffer, which
    // keeping it would keep (`new Uint8Array` copies; a Buffer's `slice` is another view).
    const frame = new Uint8Array(encodeMessage(syncProtocol, message));
    this.#lastSummaryFrame = { count, root, buckets, frame };
    return frame;
  }

  #score(peer: PeerId): number {
    let score = this.#scores.get(peer);
    if (score === undefined) {
      score = neighbourScore(this.#init.transport.localPeer, peer);
      if (this.#scores.size >= MAX_SCORES) this.#scores.clear();
      this.#scores.set(peer, score);
    }
    return score;
  }

  /**
   * @internal `docId` is about to be held at `digest` exactly as the peer that pushed it holds it,
   * and that peer pushed it to the peers `also` names as well.
   */
  noteCovered(docId: DocId, digest: string, also: Uint8Array | undefined): void {
    const tags = alsoTags(also);
    if (tags.size === 0) return;
    if (this.#covered.size >= MAX_COVERED && !this.#covered.has(docId)) this.#covered.clear();
    this.#covered.set(docId, { digest, tags });
  }

  /**
   * @internal The peers a sync message about `docId` at `digest` (the version held) may name as
   * pushed to: those this node's last flush pushed that version to; or, for a version whose push
   * is still due (queued for the next flush, or a durable local change being stored), every open
   * session, which that flush pushes it (or a later version) to. Without the second case, an
   * answer sent before the flush — an acknowledgement of the previous version arriving while a
   * new change waits for its push — carried the new change unnamed, and its receiver relayed it
   * to every peer of its own, which the flush then reached anyway.
   */
  pushedTo(docId: DocId, digest: string | undefined): Uint8Array | undefined {
    const pushed = this.#pushedTo.get(docId);
    if (pushed !== undefined && pushed.digest === digest) return pushed.also;
    if (digest === undefined || !(this.#pushes.has(docId) || this.#eventPushes.has(docId) || this.#init.store.announcing(docId))) return undefined;
    const also = this.#openTags();
    return also.length === 0 ? undefined : also;
  }

  /** The tags of the open sessions (at most {@link MAX_ALSO_PEERS}): whom a flush pushes to. */
  #openTags(): Uint8Array {
    return Buffer.concat([...this.#sessions.values()].filter((session) => session.isOpen).slice(0, MAX_ALSO_PEERS).map((session) => session.tag));
  }

  /** @internal Whether the peer tagged `tag` was pushed `docId` at `digest` by the node this one has it from. */
  covers(docId: DocId, digest: string, tag: string): boolean {
    const covered = this.#covered.get(docId);
    return covered !== undefined && covered.digest === digest && covered.tags.has(tag);
  }

  /** What this node holds, summarized (every session sends the same until something changes). */
  summary(): Summary {
    const { store } = this.#init;
    return this.#summaries.summary(() => store.ids(), (docId) => store.digest(docId));
  }

  /** Sends every session's summary again now (e.g. after new members became known). */
  resendSummaries(): void {
    for (const session of this.#sessions.values()) session.resendSummary();
  }

  /** Re-checks every connected peer, e.g. after the member list changed or a peer was admitted. */
  refreshPeers(): void {
    for (const peer of [...this.#sessions.keys()]) if (!this.#init.isPeerAllowed(peer)) this.#dropSession(peer);
    this.#reconcileSoon();
  }

  /**
   * Chooses the neighbours again: at once while this node has no session (a joiner's first one
   * opens with its first admission), else once for every change within {@link RECONCILE_SETTLE_MS}
   * — a fleet's start admits a node's connections one by one over seconds, and choosing on each
   * opened sessions to the first peers admitted only to close them as nearer ones came.
   */
  #reconcileSoon(): void {
    if (this.#stopped || this.#reconcileTimer !== undefined) return;
    if (this.#sessions.size === 0) {
      this.#reconcile();
      return;
    }
    this.#reconcileTimer = this.#init.clock.setTimeout(() => {
      this.#reconcileTimer = undefined;
      guarded(this.#init.log, 'choosing sync neighbours', () => this.#reconcile())();
    }, RECONCILE_SETTLE_MS);
  }

  stats(): SessionStats[] {
    return [...this.#sessions.values()].map((session) => session.stats()).sort((a, b) => (a.peer < b.peer ? -1 : 1));
  }

  /**
   * @internal A session ended. If its peer is still a neighbour, open a new one soon: sessions
   * end on races (a stream refused before membership reached the peer) and lost frames, not only
   * on disconnects, and nothing else would bring them back. A session the peer opened is the
   * peer's to open again.
   */
  sessionClosed(peer: PeerId, session: Session): void {
    if (this.#sessions.get(peer) !== session) return;
    this.#sessions.delete(peer);
    if (this.#stopped || this.#reopenTimers.has(peer) || !this.#chosen.has(peer)) return;
    const failures = session.stats().messagesIn > 0 ? 0 : (this.#failedSessions.get(peer) ?? 0) + 1;
    this.#failedSessions.set(peer, failures);
    const delayMs = Math.min(REOPEN_DELAY_MS * 2 ** Math.max(0, failures - 1), REOPEN_DELAY_MAX_MS);
    this.#reopenTimers.set(
      peer,
      this.#init.clock.setTimeout(
        guarded(this.#init.log, 'reopening a sync session', () => {
          this.#reopenTimers.delete(peer);
          if (this.#chosen.has(peer)) this.ensureSession(peer);
        }),
        delayMs,
      ),
    );
  }

  #scheduleAntiEntropy(): void {
    if (this.#stopped) return;
    this.#antiEntropyTimer = this.#init.clock.setTimeout(() => {
      guarded(this.#init.log, 'anti-entropy round', () => {
        this.#rotate();
        for (const session of this.#sessions.values()) session.resendSummary();
      })();
      this.#scheduleAntiEntropy();
    }, this.#init.antiEntropyMs ?? DEFAULT_ANTI_ENTROPY_MS);
  }

  #dropSession(peer: PeerId): void {
    const session = this.#sessions.get(peer);
    this.#sessions.delete(peer);
    const timer = this.#reopenTimers.get(peer);
    if (timer !== undefined) this.#init.clock.clearTimeout(timer);
    this.#reopenTimers.delete(peer);
    this.#failedSessions.delete(peer);
    session?.close();
  }

  #markDirty(docId: DocId): void {
    if (this.#stopped) return;
    // The changes of one tick coalesce into one sync message per peer and document. Event buckets
    // (a trace, written in bursts — a claim and its give-back, a reaper pass — and read by people)
    // wait EVENT_PUSH_BATCH_MS, so a burst goes out as one push per peer.
    (docId.startsWith(BATCHED_PREFIX) ? this.#eventPushes : this.#pushes).add(docId);
  }

  /** Pushes the changes of `dirty` (sorted) through every session. */
  #flush(dirty: readonly DocId[]): void {
    // Whom this flush pushes to (every open session), told with each push so the receivers
    // relay it only to the peers of theirs that are not on that list.
    const also = this.#openTags();
    if (this.#pushedTo.size + dirty.length > MAX_COVERED) this.#pushedTo.clear();
    const { store } = this.#init;
    for (const docId of dirty) {
      const digest = store.digest(docId);
      if (digest !== undefined && also.length > 0) this.#pushedTo.set(docId, { digest, also });
      else this.#pushedTo.delete(docId);
    }
    for (const session of this.#sessions.values()) session.push(dirty);
    for (const docId of dirty) this.#covered.delete(docId);
  }

  #onInbound(stream: FrameStream): void {
    const peer = stream.remotePeer;
    if (!this.#init.isPeerAllowed(peer)) {
      // Counted, so a scanner is cut off; a real joiner racing its own admission stays well under the threshold.
      this.#init.penalties.record(peer, 'sync:not-member');
      this.#init.log.debug('refused a sync stream from a peer that is not a member', { peer });
      stream.abort(new Error('not a member of this fleet'));
      return;
    }
    this.ensureSession(peer, true);
    const session = this.#sessions.get(peer);
    if (session === undefined) {
      stream.abort(new Error('no session'));
      return;
    }
    void session.readFrom(stream);
  }
}

/** Documents waiting for a push, and the one timer that will push them `delayMs` after the first. */
class PushQueue {
  readonly #clock: Clock;
  readonly #delayMs: number;
  readonly #push: (docIds: readonly DocId[]) => void;
  readonly #pending = new Set<DocId>();
  #timer: TimerId | undefined;

  constructor(clock: Clock, delayMs: number, push: (docIds: readonly DocId[]) => void) {
    this.#clock = clock;
    this.#delayMs = delayMs;
    this.#push = push;
  }

  /** Whether `docId` waits for this queue's next push. */
  has(docId: DocId): boolean {
    return this.#pending.has(docId);
  }

  add(docId: DocId): void {
    this.#pending.add(docId);
    if (this.#timer !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      const pending = [...this.#pending].sort();
      this.#pending.clear();
      this.#push(pending);
    }, this.#delayMs);
  }

  cancel(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** One peer's replication: our outbound stream, per-document sync states, and the reader of theirs. */
class Session {
  readonly peer: PeerId;
  /** The peer's tag in `also` (wire) and as a key (hex). */
  readonly tag: Uint8Array;
  readonly #tagKey: string;
  /** The peer opened this session (this node did not choose it): kept for as long as the peer keeps it. */
  readonly accepted: boolean;
  readonly #init: ReplicatorInit;
  readonly #owner: Replicator;
  readonly #syncStates = new Map<DocId, A.SyncState>();
  /** Digest of each document the peer is known to hold (from its entries or a snapshot it sent). */
  readonly #peerDigests = new Map<DocId, string>();
  /** Documents refused from this peer; further bytes for them are ignored until it reconnects. */
  readonly #refused = new Set<string>();
  #outbound: FrameStream | undefined;
  #inbound: FrameStream | undefined;
  /** Frames produced before our stream finished opening; sent right after hello. */
  #beforeOpen: Uint8Array[] = [];
  #sendChain: Promise<void> = Promise.resolve();
  #pendingSends = 0;
  #closed = false;
  #started = false;
  #theirSummary: Summary | undefined;
  /** Decoded messages waiting to be handled, in arrival order. */
  #inbox: SyncMessage[] = [];
  #inboxWaiters: Array<() => void> = [];
  #working = false;
  #stats = { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, snapshotsIn: 0, refusedIn: 0, resyncs: 0, lastMessageAt: undefined as number | undefined };
  /** Sync messages per document handled in a row without changing it. */
  readonly #idleRounds = new Map<DocId, { rounds: number; digest: string }>();
  /**
   * Received sync messages, per document, with changes that could not be applied yet because a
   * change they depend on is missing here (Automerge's bloom filter let the peer believe this node
   * held it), and the seals that came with them. Automerge keeps such changes queued in the
   * document and asks for the missing ones; here a received change is applied to a clone, and
   * the store takes only what applied. The peer's sync state counts these changes as sent and
   * will not send them again, so the session keeps them: it replays them on every later clone
   * of the document (where they apply once the dependency has come) and generates its messages
   * from a copy that holds them, so what it asks for is the missing dependency.
   */
  readonly #waiting = new Map<DocId, { messages: Uint8Array[]; seals: Seal[]; bytes: number }>();
  #waitingBytes = 0;
  /** Documents this session asked the peer for after it offered them (their copies are due). */
  readonly #asked = new Set<DocId>();
  /** Documents the peer offered while another session's copy of them was due: answered once it comes. */
  readonly #heldBackOffers = new Set<DocId>();
  /** Documents not relayed to the peer (the node they came from pushed them to it too), to name in the next `have`. */
  readonly #unrelayed = new Set<DocId>();
  /** Documents whose sync this session started afresh on the peer's word (`have`, `entries`), until the peer next syncs them. */
  readonly #freshStarts = new Set<DocId>();
  #haveTimer: TimerId | undefined;
  /** Documents whose received changes this session is still to acknowledge (see {@link ACK_DELAY_MS}). */
  readonly #acksDue = new Set<DocId>();
  #ackTimer: TimerId | undefined;

  readonly #sealVerifier: SealVerifier;

  constructor(peer: PeerId, init: ReplicatorInit, owner: Replicator, sealVerifier: SealVerifier, accepted: boolean) {
    this.peer = peer;
    const tagged = peerTag(peer);
    this.tag = tagged.tag;
    this.#tagKey = tagged.key;
    this.accepted = accepted;
    this.#init = init;
    this.#owner = owner;
    this.#sealVerifier = sealVerifier;
  }

  stats(): SessionStats {
    return { peer: this.peer, open: this.isOpen, ...this.#stats };
  }

  /** Our stream to the peer is open: what is pushed now is sent. */
  get isOpen(): boolean {
    return this.#outbound !== undefined && !this.#closed;
  }

  /** Opens our side of the session (once). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.open(0).catch((error: unknown) => {
      this.#init.log.error('opening a sync session failed', { peer: this.peer, error: String(error) });
      this.close();
    });
  }

  /** Opens our stream to the peer and sends hello and our summary; retries a few times. */
  async open(attempt: number): Promise<void> {
    if (this.#closed) return;
    try {
      this.#outbound = await this.#init.transport.openStream(this.peer, syncProtocol.id, { maxFrameBytes: syncProtocol.maxFrameBytes });
    } catch (error) {
      const delayMs = OPEN_RETRY_MS[attempt];
      if (delayMs === undefined || this.#closed) {
        this.#init.log.debug('cannot open a sync stream; giving up until the next connection', { peer: this.peer, error: String(error) });
        this.close();
        return;
      }
      if (!(error instanceof ProtocolNotSupportedError)) this.#init.log.debug('sync stream open failed; retrying', { peer: this.peer, error: String(error) });
      this.#init.clock.setTimeout(() => void this.open(attempt + 1), delayMs);
      return;
    }
    if (this.#closed) {
      this.#outbound.abort(new Error('session closed'));
      return;
    }
    void this.#drainOutbound(this.#outbound);
    // hello and our summary first, then what we answered before the stream was open.
    const queued = this.#beforeOpen;
    this.#beforeOpen = [];
    const opening = [this.#encode({ type: 'hello', body: { fleetId: this.#init.fleetId } }), this.#encode(this.#summaryMessage())];
    for (const frame of [...opening, ...queued]) if (frame !== undefined) this.#enqueueFrame(frame);
  }

  /** Sends our current summary; the peer answers with entries for any bucket that differs. */
  resendSummary(): void {
    if (this.#outbound === undefined || this.#closed) return;
    this.#send(this.#summaryMessage());
  }

  #summaryMessage(): SyncMessage {
    const summary = this.#summary();
    return { type: 'summary', body: { count: summary.count, root: summary.root, buckets: summary.buckets } };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const asked = [...this.#asked];
    this.#asked.clear();
    this.#heldBackOffers.clear();
    for (const docId of asked) this.#owner.fetchDone(docId, this);
    this.#outbound?.abort(new Error('session closed'));
    this.#inbound?.abort(new Error('session closed'));
    this.#syncStates.clear();
    this.#waiting.clear();
    this.#waitingBytes = 0;
    this.#beforeOpen = [];
    this.#inbox = [];
    this.#unrelayed.clear();
    this.#freshStarts.clear();
    if (this.#haveTimer !== undefined) this.#init.clock.clearTimeout(this.#haveTimer);
    this.#haveTimer = undefined;
    if (this.#ackTimer !== undefined) this.#init.clock.clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    this.#acksDue.clear();
    this.#releaseReader();
    this.#owner.sessionClosed(this.peer, this);
  }

  /**
   * Pushes local or relayed changes of `docIds` through the per-document sync states. A version
   * that came from a node which pushed it to this peer as well is not relayed: the peer is told
   * later, in a `have`, that this node holds it.
   */
  push(docIds: readonly DocId[]): void {
    if (!this.isOpen) return;
    const { store } = this.#init;
    for (const docId of docIds) {
      const digest = store.digest(docId);
      // The peer already holds exactly this version (it just sent it to us): nothing to say.
      if (this.#peerDigests.get(docId) === digest) continue;
      if (digest !== undefined && this.#owner.covers(docId, digest, this.#tagKey)) {
        this.#notRelayed(docId);
        continue;
      }
      this.#sendSync(docId);
    }
  }

  /**
   * Names `docId` in a `have` to the peer within {@link HAVE_DELAY_MS}: should the push from the
   * node it came from not reach the peer (that node stopped, or a frame was lost), the peer learns
   * that this node holds a version it lacks and syncs it from here.
   */
  #notRelayed(docId: DocId): void {
    if (this.#unrelayed.size >= MAX_DOCS_PER_SESSION) return;
    this.#unrelayed.add(docId);
    if (this.#haveTimer !== undefined) return;
    this.#haveTimer = this.#init.clock.setTimeout(
      guarded(this.#init.log, 'telling a peer what this node holds', () => {
        this.#haveTimer = undefined;
        const { store } = this.#init;
        const entries: Array<[string, string]> = [];
        for (const docId of [...this.#unrelayed].sort()) {
          const digest = store.digest(docId);
          // Not when the peer has since told this node it holds that very version.
          if (digest !== undefined && this.#peerDigests.get(docId) !== digest) entries.push([docId, digest]);
        }
        this.#unrelayed.clear();
        for (let i = 0; i < entries.length; i += MAX_HAVE_PER_MESSAGE) this.#send({ type: 'have', body: { entries: entries.slice(i, i + MAX_HAVE_PER_MESSAGE) } });
      }),
      HAVE_DELAY_MS,
    );
  }

  /**
   * Reads the peer's stream until it ends. Messages are handled one at a time, in order, from a
   * short inbox; while one is handled the reader goes on decoding, and the seals of what waits are
   * queued for verification so they are checked as one batch (bounded: the reader pauses when the
   * inbox is full, which pushes back on the peer through the stream).
   */
  async readFrom(stream: FrameStream): Promise<void> {
    this.#inbound?.abort(new Error('replaced by a newer stream'));
    this.#inbound = stream;
    try {
      await this.#read(stream);
    } finally {
      // The peer's stream is the peer's half of the session: when it ends, so does the session
      // (the side that wants it opens a new one). A stream replaced by a newer one is not current.
      if (this.#inbound === stream) this.close();
    }
  }

  async #read(stream: FrameStream): Promise<void> {
    let greeted = false;
    try {
      for await (const frame of stream) {
        if (this.#closed) break;
        this.#stats.bytesIn += frame.length;
        this.#stats.messagesIn++;
        this.#stats.lastMessageAt = this.#init.clock.now();
        let message: SyncMessage;
        try {
          message = decodeMessage(syncProtocol, frame);
          if (!greeted && message.type !== 'hello') throw new WireError('protocol', `expected hello first, got ${message.type}`);
        } catch (error) {
          this.#refuseStream(stream, error);
          return;
        }
        if (message.type === 'hello') {
          if (message.body.fleetId !== this.#init.fleetId) {
            this.#refuseStream(stream, new WireError('protocol', `peer belongs to fleet ${message.body.fleetId}`));
            return;
          }
          greeted = true;
          if (this.accepted) this.start();
          continue;
        }
        if ((message.type === 'snapshot' || message.type === 'sync') && message.body.seals !== undefined) {
          const authorized = sealAuthority(message.body.docId as DocId);
          if (authorized !== undefined) this.#sealVerifier.prefetch(fromWire(message.body.docId, message.body.seals).filter((seal) => authorized(seal.signer)));
        }
        this.#inbox.push(message);
        void this.#work();
        if (this.#inbox.length >= MAX_INBOX) await new Promise<void>((resolve) => this.#inboxWaiters.push(resolve));
      }
    } catch (error) {
      if ((error as Error).name === 'FrameTooLargeError') this.#init.penalties.record(this.peer, 'oversized');
      this.#init.log.debug('sync stream ended', { peer: this.peer, error: String(error) });
    }
  }

  /** Handles the inbox in order; one worker at a time. */
  async #work(): Promise<void> {
    if (this.#working) return;
    this.#working = true;
    try {
      while (this.#inbox.length > 0 && !this.#closed) {
        const message = this.#inbox.shift()!;
        if (this.#inbox.length < MAX_INBOX) this.#releaseReader();
        try {
          await this.#handle(message);
        } catch (error) {
          // Not necessarily the peer's fault (a storage error, say), but this session's state is
          // now unknown: close it; both sides open a fresh one and compare summaries again.
          this.#init.log.error('handling a sync message failed; restarting the session', { peer: this.peer, type: message.type, error: String(error) });
          this.close();
        }
      }
    } finally {
      this.#working = false;
      this.#releaseReader();
    }
  }

  #releaseReader(): void {
    const waiters = this.#inboxWaiters;
    this.#inboxWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #refuseStream(stream: FrameStream, error: unknown): void {
    const code = error instanceof WireError ? error.code : 'malformed';
    this.#init.penalties.record(this.peer, code);
    this.#init.log.warn('refused a sync frame from a peer', { peer: this.peer, code, error: (error as Error).message });
    stream.abort(error as Error);
  }

  async #handle(message: SyncMessage): Promise<void> {
    if (message.type === 'snapshot' || message.type === 'sync') {
      this.#init.log.debug('sync message in', { peer: this.peer, type: message.type, docId: message.body.docId });
    }
    switch (message.type) {
      case 'hello':
        return;
      case 'summary':
        return this.#onSummary({ count: message.body.count, root: message.body.root, buckets: message.body.buckets });
      case 'entries':
        return this.#onEntries(message.body.bucket, message.body.entries);
      case 'have':
        return this.#compare(message.body.entries);
      case 'want':
        return this.#onWant(message.body.docIds);
      case 'snapshot':
        return this.#onSnapshot(message.body.docId, message.body.bytes, fromWire(message.body.docId, message.body.seals));
      case 'sync':
        return this.#onSync(message.body.docId, message.body.message, fromWire(message.body.docId, message.body.seals), message.body.also);
      case 'refused':
        this.#init.log.warn('a peer refused one of our documents', { peer: this.peer, docId: message.body.docId, reason: message.body.reason });
        return;
    }
  }

  #onSummary(theirs: Summary): void {
    this.#theirSummary = theirs;
    // The fleet document's bucket goes first: a joining node is ready only once it holds it.
    const fleetBucket = bucketOf(FLEET_DOC_ID);
    const buckets = differingBuckets(this.#summary(), theirs).sort((a, b) => Number(b === fleetBucket) - Number(a === fleetBucket));
    for (const bucket of buckets) {
      this.#send({ type: 'entries', body: { bucket, entries: this.#entriesIn(bucket) } });
    }
  }

  /**
   * Their documents in a bucket that differs: what both hold but differently goes through
   * Automerge sync; what we lack and would take in, we ask for (`want`). Transfer is pulled, so a
   * summary sent again (anti-entropy, new members) always completes the exchange.
   */
  #onEntries(bucket: number, theirs: ReadonlyArray<readonly [string, string]>): void {
    this.#compare(theirs.filter(([docId]) => bucketOf(docId) === bucket));
  }

  /** The peer holds these versions: sync the documents both hold differently, ask for those this node lacks and would take in. */
  #compare(theirs: ReadonlyArray<readonly [string, string]>): void {
    const { store } = this.#init;
    const wanted: string[] = [];
    for (const [docId, digest] of theirs) {
      const id = docId as DocId;
      if (this.#refused.has(docId)) continue;
      if (this.#peerDigests.size >= MAX_DOCS_PER_SESSION) this.#peerDigests.clear();
      this.#peerDigests.set(id, digest);
      const ours = store.digest(id);
      if (ours === undefined) {
        if (parseDocId(docId) !== undefined && !store.isLocked(id) && this.#init.acceptsDocument?.(id) !== false) wanted.push(docId);
      } else if (ours !== digest) {
        this.#syncDiffering(id);
      }
    }
    // A large transfer is about to arrive: have the verifier's workers start while it does.
    if (wanted.length >= PREPARE_VERIFIER_AT) this.#sealVerifier.prepare();
    for (let i = 0; i < wanted.length; i += MAX_WANT_PER_MESSAGE) {
      this.#send({ type: 'want', body: { docIds: wanted.slice(i, i + MAX_WANT_PER_MESSAGE) } });
    }
  }

  /** The peer lacks these documents: send the ones we hold, with their seals. */
  #onWant(docIds: readonly string[]): void {
    const { store } = this.#init;
    // The fleet document first: a joining node is ready once it holds it.
    const ordered = [...docIds].sort((a, b) => Number(b === FLEET_DOC_ID) - Number(a === FLEET_DOC_ID));
    for (const docId of ordered) {
      const doc = store.get(docId as DocId);
      if (doc !== undefined) this.#send({ type: 'snapshot', body: { docId, bytes: A.save(doc), ...this.#sealsFor(docId as DocId) } });
    }
  }

  async #onSnapshot(docId: string, bytes: Uint8Array, seals: readonly Seal[]): Promise<void> {
    try {
      await this.#takeSnapshot(docId, bytes, seals);
    } finally {
      if (this.#asked.delete(docId as DocId)) this.#owner.fetchDone(docId as DocId, this);
    }
  }

  async #takeSnapshot(docId: string, bytes: Uint8Array, seals: readonly Seal[]): Promise<void> {
    this.#stats.snapshotsIn++;
    const before = this.#init.store.digest(docId as DocId);
    // Asked for while another session's copy was on its way, which is held now (the version this
    // peer offered): nothing to load. A newer version the peer made since comes through sync.
    if (before !== undefined && this.#peerDigests.get(docId as DocId) === before) return;
    // A document not held yet (an empty fork) loads straight from the bytes: a third of the cost
    // of an incremental load into an empty document, which a joiner pays a thousand times.
    const accepted = await this.#receive(docId, (fork) => (fork === undefined || A.getHeads(fork).length === 0 ? this.#init.store.load(bytes, docId as DocId) : A.loadIncremental(fork, bytes)), seals);
    const id = docId as DocId;
    if (!accepted) return;
    // Without changes of our own, we now hold exactly what they sent; otherwise sync brings them level.
    if (before === undefined) this.#peerDigests.set(id, this.#init.store.digest(id)!);
    else this.#sendSync(id);
  }

  async #onSync(docId: string, message: Uint8Array, seals: readonly Seal[], also?: Uint8Array): Promise<void> {
    const id = docId as DocId;
    if (!this.#syncStates.has(id) && this.#syncStates.size >= MAX_DOCS_PER_SESSION) {
      this.#init.penalties.record(this.peer, 'too-many-documents');
      this.close();
      return;
    }
    let decoded: A.DecodedSyncMessage;
    try {
      decoded = A.decodeSyncMessage(message);
    } catch (error) {
      this.#init.penalties.record(this.peer, 'bad-document');
      this.#init.log.warn('a peer sent a sync message that does not decode', { peer: this.peer, docId, error: (error as Error).message });
      return;
    }
    // The peer holds what its message's heads say: a push of that very version to it is skipped.
    const theirs = headsDigest(decoded.heads);
    this.#notePeerHolds(id, theirs);
    this.#freshStarts.delete(id);
    // It holds exactly what this node holds: the message can bring nothing (any changes it carries
    // are in that history) and the peer needs nothing. The sync state is advanced as Automerge
    // would advance it, without applying the message to a clone and verifying the result: in a
    // flood (a change relayed by several neighbours) most messages are such.
    if (theirs === this.#init.store.digest(id) && !this.#waiting.has(id)) {
      this.#syncStates.set(id, sameHeadsReceived(this.#syncStates.get(id) ?? A.initSyncState(), decoded));
      if (this.#stalled(id)) return;
      this.#sendSync(id);
      return;
    }
    if (this.#wantInstead(id, decoded)) return;
    const waiting = this.#waiting.get(id);
    let waits = false;
    let overflow = false;
    const accepted = await this.#receive(docId, (fork) => {
      const [next, nextState] = A.receiveSyncMessage(replayWaiting(fork ?? this.#init.store.empty(), waiting), this.#syncStates.get(id) ?? A.initSyncState(), message);
      // Stored at once, so a push between here and the adoption builds on it (the waiting
      // changes too, so that push asks for the right dependency).
      this.#syncStates.set(id, nextState);
      waits = A.getMissingDeps(next, []).length > 0;
      if (!waits) return next;
      if (decoded.changes.length > 0) overflow = !this.#keepWaiting(id, message, seals);
      // Changes still waiting for a dependency stay in `#waiting`, not in the store: what is
      // adopted is exactly what applied (and was verified).
      const held = this.#init.store.get(id);
      const clean = held === undefined ? this.#init.store.empty() : this.#init.store.fork(held);
      const applied = A.saveSince(next, A.getHeads(clean));
      return applied.length === 0 ? clean : A.loadIncremental(clean, applied);
    }, waiting === undefined ? seals : [...waiting.seals, ...seals], also === undefined ? undefined : { digest: theirs, also });
    if (!accepted) {
      this.#syncStates.delete(id);
      this.#dropWaiting(id);
      return;
    }
    if (!waits) this.#dropWaiting(id);
    if (overflow) return this.#startOver(id, 'changes received from the peer wait for too many missing ones; asking the peer for a full copy');
    if (this.#stalled(id)) return;
    // Holding exactly what the peer holds, the answer could only name these heads: it waits a
    // little, so that changes the peer pushes next are acknowledged by the same message.
    if (!waits && decoded.changes.length > 0 && this.#init.store.digest(id) === theirs) this.#ackSoon(id);
    else this.#sendSync(id);
  }

  /** Acknowledges the received changes of `docId` within {@link ACK_DELAY_MS}, unless a message about it goes first. */
  #ackSoon(id: DocId): void {
    if (this.#acksDue.size >= MAX_DOCS_PER_SESSION) {
      this.#sendSync(id);
      return;
    }
    this.#acksDue.add(id);
    if (this.#ackTimer !== undefined) return;
    this.#ackTimer = this.#init.clock.setTimeout(
      guarded(this.#init.log, 'acknowledging changes', () => {
        this.#ackTimer = undefined;
        const due = [...this.#acksDue].sort();
        this.#acksDue.clear();
        for (const docId of due) this.#sendSync(docId);
      }),
      ACK_DELAY_MS,
    );
  }

  #notePeerHolds(id: DocId, digest: string): void {
    if (this.#peerDigests.size >= MAX_DOCS_PER_SESSION && !this.#peerDigests.has(id)) this.#peerDigests.clear();
    this.#peerDigests.set(id, digest);
  }

  /**
   * A peer offers (a first sync message, no changes yet) a document this node does not hold:
   * asking for its snapshot (`want`) takes one round trip and one load, where syncing it up from
   * an empty document takes two round trips and a throwaway empty document. True when asked.
   */
  #wantInstead(id: DocId, decoded: A.DecodedSyncMessage): boolean {
    const { store } = this.#init;
    if (decoded.changes.length > 0 || this.#syncStates.has(id) || store.has(id) || this.#refused.has(id)) return false;
    if (parseDocId(id) === undefined || store.isLocked(id) || this.#init.acceptsDocument?.(id) === false) return false;
    if (this.#asked.has(id)) return true;
    if (!this.#owner.claimFetch(id, this)) {
      // Another neighbour's copy is on its way: once it is here this offer is answered (by the push
      // of what arrived, which tells the peer; or by asking it, if that copy did not come).
      if (this.#heldBackOffers.size >= MAX_DOCS_PER_SESSION) return false;
      this.#heldBackOffers.add(id);
      return true;
    }
    if (!this.#send({ type: 'want', body: { docIds: [id] } })) {
      this.#owner.fetchDone(id, this);
      return false;
    }
    this.#asked.add(id);
    return true;
  }

  /** @internal Another session's copy of `docId` came or will not: an offer of it held back here goes on. */
  offerWaited(docId: DocId): void {
    if (!this.#heldBackOffers.delete(docId) || this.#closed) return;
    const { store } = this.#init;
    // Held now: the push of its arrival reaches this peer (unless it holds that very version).
    if (store.has(docId)) return;
    if (this.#refused.has(docId) || store.isLocked(docId) || this.#init.acceptsDocument?.(docId) === false) return;
    if (!this.#owner.claimFetch(docId, this)) {
      this.#heldBackOffers.add(docId);
      return;
    }
    if (this.#send({ type: 'want', body: { docIds: [docId] } })) this.#asked.add(docId);
    else this.#owner.fetchDone(docId, this);
  }

  /** Adds a received message to the document's waiting ones; false past the bounds. */
  #keepWaiting(id: DocId, message: Uint8Array, seals: readonly Seal[]): boolean {
    const waiting = this.#waiting.get(id) ?? { messages: [], seals: [], bytes: 0 };
    if (waiting.messages.length >= MAX_WAITING_MESSAGES || this.#waitingBytes + message.length > MAX_WAITING_BYTES) return false;
    waiting.messages.push(message);
    waiting.seals.push(...seals);
    waiting.bytes += message.length;
    this.#waitingBytes += message.length;
    this.#waiting.set(id, waiting);
    return true;
  }

  #dropWaiting(id: DocId): void {
    const waiting = this.#waiting.get(id);
    if (waiting === undefined) return;
    this.#waitingBytes -= waiting.bytes;
    this.#waiting.delete(id);
  }

  /**
   * The document as this session syncs it: the held one, plus the changes waiting for a missing
   * dependency while they still wait (Automerge then asks the peer for that dependency). Once the
   * dependency is held, the waiting changes apply on the next message from the peer, and are
   * verified and adopted then; until then, they are not announced as held.
   */
  #syncedDoc(id: DocId, held: AnyDoc): AnyDoc {
    const waiting = this.#waiting.get(id);
    if (waiting === undefined) return held;
    const withWaiting = replayWaiting(this.#init.store.fork(held), waiting);
    if (A.getMissingDeps(withWaiting, []).length === 0 && A.getHeads(withWaiting).join() === A.getHeads(held).join()) {
      // Everything that waited has reached the store by another way.
      this.#dropWaiting(id);
      return held;
    }
    return A.getHeads(withWaiting).join() === A.getHeads(held).join() ? withWaiting : held;
  }

  /**
   * Sync rounds on one document that change nothing here, again and again, mean the two sync
   * states no longer describe what each side holds (Automerge does not resend what its state
   * says it sent). The session then starts that document over: it drops its state and asks for
   * a full copy, which the store merges. Defence in depth: the one such drift found (received
   * changes dropped while they waited for a dependency, see `#waiting`) is fixed at its cause;
   * this bounds the traffic of any other.
   */
  #stalled(id: DocId): boolean {
    const digest = this.#init.store.digest(id) ?? '';
    const idle = this.#idleRounds.get(id);
    // Any change to the document here (received or local) since the last round is progress.
    const rounds = idle?.digest === digest ? idle.rounds + 1 : 1;
    if (rounds < MAX_IDLE_SYNC_ROUNDS) {
      if (this.#idleRounds.size < MAX_DOCS_PER_SESSION || idle !== undefined) this.#idleRounds.set(id, { rounds, digest });
      return false;
    }
    this.#idleRounds.delete(id);
    this.#startOver(id, 'sync of a document made no progress; asking the peer for a full copy');
    return true;
  }

  /** Drops what this session tracks of a document's sync and asks the peer for a full copy, which the store merges. */
  #startOver(id: DocId, why: string): void {
    this.#syncStates.delete(id);
    this.#dropWaiting(id);
    this.#stats.resyncs++;
    this.#init.log.warn(why, { peer: this.peer, docId: id });
    this.#send({ type: 'want', body: { docIds: [id] } });
  }

  /**
   * Applies received bytes to a clone of the document, verifies what they added, and adopts the
   * clone. Returns false (and tells the peer) when the change is refused.
   */
  async #receive(docId: string, apply: (fork: AnyDoc | undefined) => AnyDoc, seals: readonly Seal[], pushed?: { readonly digest: string; readonly also: Uint8Array }): Promise<boolean> {
    const { store } = this.#init;
    if (this.#refused.has(docId)) return false;
    if (parseDocId(docId) === undefined) {
      this.#refuseDoc(docId, new RefusedChangeError('unknown-document', `unknown document id ${docId}`));
      return false;
    }
    const id = docId as DocId;
    if (store.isLocked(id)) {
      this.#refuseDoc(docId, new RefusedChangeError('schema-too-new', `document ${docId} is kept untouched here: a newer powernode release wrote it`));
      return false;
    }
    if (this.#init.acceptsDocument?.(id) === false) {
      // Usually a race (the new member's document outran the fleet document that admits it):
      // not counted, not remembered; the next summary round brings it once it is acceptable.
      this.#stats.refusedIn++;
      this.#init.log.debug('ignored a document this node does not take in (yet)', { peer: this.peer, docId });
      return false;
    }
    const held = store.get(id);
    // Only read (heads, and what the authority checks compare): one empty document serves all.
    const before = held ?? NOTHING_HELD;
    let after: AnyDoc;
    try {
      // A document not held yet is built from nothing (the callback makes its own empty one when
      // it needs one); a held one on a clone, so a refused change leaves it untouched.
      after = apply(held === undefined ? undefined : this.#init.store.fork(held));
    } catch (error) {
      this.#init.penalties.record(this.peer, 'bad-document');
      this.#init.log.warn('a peer sent document bytes that do not apply', { peer: this.peer, docId, error: (error as Error).message });
      return false;
    }
    try {
      verifyIncoming(id, before, after);
    } catch (error) {
      if (!(error instanceof RefusedChangeError)) throw error;
      this.#refuseDoc(docId, error);
      return false;
    }
    const unauthorized = this.#init.authorize?.(id, before, after);
    if (unauthorized !== undefined) {
      this.#refuseDoc(docId, new RefusedChangeError('not-authorized', `refused a change to ${docId}: ${unauthorized}`));
      return false;
    }
    const validSeals = await this.#checkSeals(id, before, after, seals);
    if (validSeals === undefined) {
      this.#refuseDoc(docId, new RefusedChangeError('not-authorized', `changes to ${docId} are not sealed by a writer of that document`));
      return false;
    }
    // This node is about to hold exactly what the peer pushed (not merged with changes of its own):
    // the flush that relays it leaves out the peers the push also went to. Noted before the
    // adoption, whose change notice schedules that flush.
    if (pushed !== undefined && headsDigest(A.getHeads(after)) === pushed.digest) this.#owner.noteCovered(id, pushed.digest, pushed.also);
    try {
      await store.adopt(id, after, this.peer, validSeals);
    } catch (error) {
      if (!(error instanceof DocTooLargeError)) throw error;
      this.#refuseDoc(docId, new RefusedChangeError('too-large', error.message));
      return false;
    }
    return true;
  }

  /**
   * Where a document's writers seal their heads, returns the received seals that are valid and
   * authorized, or undefined when the changes `after` adds are not covered by any seal (ours or
   * theirs). Documents without enforced seals pass with no seals.
   */
  async #checkSeals(docId: DocId, before: AnyDoc, after: AnyDoc, seals: readonly Seal[]): Promise<Seal[] | undefined> {
    const authorized = sealAuthority(docId);
    if (authorized === undefined) return [];
    const candidates = seals.filter((seal) => authorized(seal.signer));
    const verdicts = await this.#sealVerifier.verify(candidates);
    const valid = candidates.filter((_, i) => verdicts[i]);
    const known = this.#init.store.seals(docId).filter((seal) => authorized(seal.signer));
    return coveredBySeals(before, after, [...valid, ...known]) ? valid : undefined;
  }

  /** The document's seals as the sync protocol carries them (omitted when there are none). */
  #sealsFor(docId: DocId): { seals?: Array<{ heads: string[]; signer: Uint8Array; signature: Uint8Array }> } {
    const seals = this.#init.store.seals(docId);
    return seals.length === 0 ? {} : { seals: seals.map((seal) => ({ heads: [...seal.heads], signer: seal.signer, signature: seal.signature })) };
  }

  #refuseDoc(docId: string, error: RefusedChangeError): void {
    this.#refused.add(docId);
    this.#syncStates.delete(docId as DocId);
    this.#dropWaiting(docId as DocId);
    this.#stats.refusedIn++;
    this.#init.penalties.record(this.peer, `refused:${error.reason}`);
    this.#init.log.warn('refused a change from a peer', { peer: this.peer, docId, reason: error.reason, detail: error.message });
    this.#init.onRefused?.({ peer: this.peer, docId, error });
    this.#send({ type: 'refused', body: { docId, reason: error.message.slice(0, 1000) } });
  }

  /**
   * Syncs a document the peer holds in another version than this node. When the sync state has
   * nothing to say (it believes both sides hold what they last told each other, while a change
   * was not sent to the peer or was lost on the way), the document's sync starts from a fresh
   * state: its first message names this node's heads and what it holds, which the peer answers.
   */
  #syncDiffering(docId: DocId): void {
    if (this.#sendSync(docId) || !this.#syncStates.has(docId)) return;
    // Once per document until the peer next sends a sync message about it: a fresh start costs a
    // message naming everything held (a bloom filter of the whole history), and a peer repeating
    // that it holds another version must not make this node send one each time.
    if (this.#freshStarts.has(docId)) return;
    if (this.#freshStarts.size >= MAX_DOCS_PER_SESSION) this.#freshStarts.clear();
    this.#freshStarts.add(docId);
    this.#syncStates.delete(docId);
    this.#sendSync(docId);
  }

  /** Sends the document's next sync message, if Automerge has one; true when one was sent. */
  #sendSync(docId: DocId): boolean {
    if (this.#closed) return false;
    // Whatever this sends (or finds nothing to send) answers what the peer is owed an acknowledgement of.
    this.#acksDue.delete(docId);
    // A document we do not hold yet, but that the peer is syncing with us, is answered from an
    // empty document: that answer is what asks the peer for its changes.
    const held = this.#init.store.get(docId) ?? (this.#syncStates.has(docId) && this.#init.acceptsDocument?.(docId) !== false ? this.#init.store.empty() : undefined);
    if (held === undefined) {
      this.#syncStates.delete(docId);
      this.#dropWaiting(docId);
      return false;
    }
    const doc = this.#syncedDoc(docId, held);
    const [state, message] = A.generateSyncMessage(doc, this.#syncStates.get(docId) ?? A.initSyncState());
    // Automerge records what the state says was sent: keep it only if the message really goes.
    // A message about the version this node last pushed names whom it pushed it to.
    const also = this.#owner.pushedTo(docId, this.#init.store.digest(docId));
    const pushedTo = also === undefined ? {} : { also };
    if (message === null) {
      this.#syncStates.set(docId, state);
      return false;
    }
    if (!this.#send({ type: 'sync', body: { docId, message, ...this.#sealsFor(docId), ...pushedTo } })) return false;
    this.#syncStates.set(docId, state);
    return true;
  }

  #summary(): Summary {
    return this.#owner.summary();
  }

  #entriesIn(bucket: number): Array<[string, string]> {
    const { store } = this.#init;
    return store
      .ids()
      .filter((docId) => bucketOf(docId) === bucket)
      .map((docId) => [docId, store.digest(docId)!] as [string, string]);
  }

  /** Encodes and queues a message; false (never an exception) when it cannot be sent. */
  #send(message: SyncMessage): boolean {
    if (this.#closed) return false;
    const frame = this.#encode(message);
    if (frame === undefined) return false;
    if (this.#outbound === undefined) {
      // The peer's stream can reach us before ours to it is open; our answers must not be lost.
      if (this.#beforeOpen.length >= MAX_PENDING_SENDS) {
        this.close();
        return false;
      }
      this.#beforeOpen.push(frame);
      return true;
    }
    return this.#enqueueFrame(frame);
  }

  /** The message as a frame, or undefined (logged) if it cannot be encoded. */
  #encode(message: SyncMessage): Uint8Array | undefined {
    if (message.type === 'snapshot' || message.type === 'sync') {
      this.#init.log.debug('sync message out', { peer: this.peer, type: message.type, docId: message.body.docId });
    } else if (message.type !== 'hello') {
      this.#init.log.debug('sync message out', { peer: this.peer, type: message.type, ...(message.type === 'entries' ? { bucket: message.body.bucket, count: message.body.entries.length } : {}) });
    }
    try {
      return message.type === 'summary' ? this.#owner.encodedSummary(message) : encodeMessage(syncProtocol, message);
    } catch (error) {
      this.#init.log.error('cannot encode a sync message; not sent', { peer: this.peer, type: message.type, error: String(error) });
      return undefined;
    }
  }

  #enqueueFrame(frame: Uint8Array): boolean {
    const stream = this.#outbound;
    if (stream === undefined || this.#closed) return false;
    if (this.#pendingSends >= MAX_PENDING_SENDS) {
      this.#init.log.warn('peer is not reading its sync stream; dropping the session', { peer: this.peer });
      this.close();
      return false;
    }
    this.#pendingSends++;
    this.#stats.bytesOut += frame.length;
    this.#stats.messagesOut++;
    this.#sendChain = this.#sendChain
      .then(() => stream.send(frame))
      .catch((error: unknown) => {
        if (!this.#closed) this.#init.log.debug('sync send failed; closing the session', { peer: this.peer, error: String(error) });
        this.close();
      })
      .finally(() => {
        this.#pendingSends--;
      });
    return true;
  }

  /** Our stream carries nothing back; reading it notices when the peer resets it. */
  async #drainOutbound(stream: FrameStream): Promise<void> {
    try {
      for await (const _ of stream) {
        // The peer never writes on our stream; anything it sends is ignored.
      }
    } catch {
      // A reset shows up here; the session ends below.
    }
    if (this.#outbound === stream) this.close();
  }
}

/**
 * The sync state Automerge's `receiveSyncMessage` leaves after a message whose heads are exactly
 * this node's (so every change it carries is held and the peer needs nothing): what the peer
 * holds is what both hold, nothing sent to it is in flight any more, and a message without
 * changes is also the peer's acknowledgement of those heads. Kept equal to Automerge's own result
 * by a test (test/mesh/replication.test.ts), so an Automerge upgrade that changes it is noticed.
 */
export function sameHeadsReceived(state: A.SyncState, message: A.DecodedSyncMessage): A.SyncState {
  const heads = [...message.heads].sort();
  return {
    ...state,
    sharedHeads: heads,
    lastSentHeads: message.changes.length === 0 ? heads : state.lastSentHeads,
    theirHeads: heads,
    theirNeed: [...message.need],
    theirHave: message.have,
    sentHashes: {},
    inFlight: false,
    // The typings say string[]; Automerge keeps (and reads) an object of hashes.
  } as unknown as A.SyncState;
}

/** `doc` with the changes of the waiting sync messages applied, or queued where they still lack a dependency. */
function replayWaiting(doc: AnyDoc, waiting: { readonly messages: readonly Uint8Array[] } | undefined): AnyDoc {
  if (waiting === undefined) return doc;
  // A throwaway sync state: only the changes the messages carry matter here.
  for (const message of waiting.messages) doc = A.receiveSyncMessage(doc, A.initSyncState(), message)[0];
  return doc;
}

/** Seals as received on the wire, named with the document they arrived for. */
function fromWire(docId: string, seals: ReadonlyArray<{ heads: readonly string[]; signer: Uint8Array; signature: Uint8Array }> | undefined): Seal[] {
  return (seals ?? []).map((seal) => ({ docId, heads: seal.heads, signer: seal.signer, signature: seal.signature }));
}
