import * as A from '@automerge/automerge';
import {
  type DocId,
  type EventFilter,
  type EventsDocument,
  type FleetEvent,
  type Severity,
  bucketEntries,
  eventMatches,
  eventsDocId,
  isRetired,
  parseDocId,
  readEvent,
  readEvents,
  recordEvent,
  shardOf,
  toHex,
} from '../../crdt-schema/index.ts';
import type { Logger } from '../logger.ts';
import type { Clock, TimerId } from '../ports/clock.ts';
import type { Random } from '../ports/random.ts';
import { Listeners, type PeerId } from '../ports/transport.ts';
import type { DocStore, SealSigner } from '../replication/index.ts';
import { sha256Hex } from '../trust/keys.ts';
import { setBounded } from '../bounded-map.ts';

/** How often retired buckets are looked for and deleted. */
const RETENTION_CHECK_MS = 60 * 60_000;
/** Own buckets whose entries are kept counted: a day's three or so, and the day before's. */
const OWN_BUCKETS_COUNTED = 8;
/** Events a listing returns at most. */
export const EVENTS_LIST_MAX = 5_000;
/**
 * How long an event emitted with `gather` waits for others into the same bucket, to be written
 * with them in one change: one change, one seal, one store write and one push to every peer for
 * all of them, where each event was all of that on every node (a pool claim and its give-back
 * wrote two: ~22 ms of the five-node fleet's CPU and ~11 of its sync messages).
 */
export const EVENT_GATHER_MS = 500;
/** Events gathered for one bucket at most: one more is written with them at once. */
const EVENT_GATHER_MAX = 100;

/**
 * A stable event id from what the event is about (kind, subject, the transition): every node
 * that emits the same fact emits the same id, so a repeat is one event.
 */
export function eventIdOf(...parts: ReadonlyArray<string | number>): string {
  return sha256Hex(new TextEncoder().encode(parts.join('\u0000'))).slice(0, 32);
}

export interface EventLogInit {
  readonly store: DocStore;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly self: PeerId;
  readonly identity: SealSigner;
  /** Whether `peer` may write event buckets (a member, not revoked). */
  isWriter(peer: string): boolean;
}

/** What an emitter gives; the log adds the time and the source node. */
export interface EventInput {
  /** A stable id makes the emission idempotent fleet-wide (see {@link eventIdOf}); random when absent. */
  readonly id?: string;
  readonly kind: string;
  readonly severity: Severity;
  readonly subject?: string;
  readonly detail: string;
  readonly payload?: Readonly<Record<string, string | number>>;
  readonly singleton?: string;
  readonly epoch?: number;
}

/**
 * The fleet event log (docs/PLACEMENT.md §Fleet event log): events live in time-bucketed
 * documents `events/<routine|high>/<day>/<writer>`, each written and sealed by its one writer,
 * replicated like every document, and retired by age (90 days routine, 365 days high and
 * critical) on every node by the same rule. An event id that two nodes both emit (a control-plane
 * actor repeating an emission after a failover) is one event to readers.
 */
export class EventLog {
  readonly #init: EventLogInit;
  readonly #byDoc = new Map<DocId, { digest: string; heads: A.Heads; events: Map<string, FleetEvent> }>();
  /**
   * How many entries this node's own buckets hold, each at the digest it was counted at: counting
   * them on every emission cost what the bucket holds (it grows all day, to 5,000 entries). Only
   * this node writes them; a bucket at another digest (taken back from a peer) is counted again.
   */
  readonly #ownEntries = new Map<DocId, { digest: string | undefined; entries: number }>();
  /** Each event id held, with its earliest emission and how many buckets hold it. */
  readonly #known = new Map<string, { event: FleetEvent; count: number }>();
  readonly #listeners = new Listeners<FleetEvent>();
  /** Events emitted with `gather`, per bucket, waiting to be written together (see {@link EVENT_GATHER_MS}). */
  readonly #gathering = new Map<DocId, Gathered>();
  /** The ids of the events gathered, in any bucket. */
  readonly #gatheredIds = new Map<string, FleetEvent>();
  #timer: TimerId | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(init: EventLogInit) {
    this.#init = init;
  }

  /** Indexes what is held (announcing nothing), then follows changes and applies retention. */
  start(): void {
    for (const id of this.#init.store.ids()) if (id.startsWith('events/')) this.#index(id, false);
    this.#unsubscribe = this.#init.store.onChanged(({ docId }) => {
      if (docId.startsWith('events/')) this.#index(docId, true);
    });
    void this.prune();
  }

  /** Stops following changes; events still gathered are written now (their emissions resolve when stored). */
  stop(): void {
    for (const docId of [...this.#gathering.keys()]) this.#writeGathered(docId);
    this.#unsubscribe?.();
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Calls `listener` for each event that appears (emitted here or received), once per id. */
  onEvent(listener: (event: FleetEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Whether an event of that id is held (or gathered to be written). */
  has(id: string): boolean {
    return this.#known.has(id) || this.#gatheredIds.has(id);
  }

  /** The event of that id (its earliest emission), if held or gathered to be written. */
  get(id: string): FleetEvent | undefined {
    return this.#known.get(id)?.event ?? this.#gatheredIds.get(id);
  }

  /**
   * Records an event in this node's bucket for its day and class; high and critical ones durably.
   * Returns the event and whether it was written; when the log already holds that id, the event
   * it holds (its first emission) and false.
   *
   * With `gather`, a routine event (low or medium) is written within {@link EVENT_GATHER_MS},
   * in one change with the others emitted into its bucket meanwhile (the promise resolves once
   * that change is stored): for traces that nothing waits on, many a second (a pool's claims).
   * `has` and `get` know it at once; listings and peers once it is written. An emission without
   * `gather` into a bucket with events gathered writes them with it, at once. High and critical
   * events are never gathered.
   */
  async emit(input: EventInput, options: { readonly gather?: boolean } = {}): Promise<{ event: FleetEvent; written: boolean }> {
    const { clock, self } = this.#init;
    const at = clock.now();
    const event: FleetEvent = {
      id: input.id ?? toHex(this.#init.random.bytes(16)),
      kind: input.kind,
      severity: input.severity,
      at,
      detail: input.detail,
      ...(input.subject === undefined ? {} : { subject: input.subject }),
      ...(input.payload === undefined ? {} : { payload: input.payload }),
      source: { peer: self, ...(input.singleton === undefined ? {} : { singleton: input.singleton }), ...(input.epoch === undefined ? {} : { epoch: input.epoch }) },
    };
    const held = this.get(event.id);
    if (held !== undefined) return { event: held, written: false };
    const docId = eventsDocId(self, event.severity, at);
    let recorded: boolean;
    if (options.gather === true && !retentionIsHigh(event.severity)) {
      let gathered = this.#gathering.get(docId);
      if (gathered === undefined) {
        const made: Gathered = { events: [], written: Promise.withResolvers<readonly boolean[]>(), timer: clock.setTimeout(() => this.#writeGathered(docId), EVENT_GATHER_MS) };
        this.#gathering.set(docId, made);
        gathered = made;
      }
      const index = gathered.events.push(event) - 1;
      this.#gatheredIds.set(event.id, event);
      if (gathered.events.length >= EVENT_GATHER_MAX) this.#writeGathered(docId);
      recorded = (await gathered.written.promise)[index]!;
    } else {
      const gathered = this.#takeGathered(docId);
      const events = [...(gathered?.events ?? []), event];
      const written = this.#write(docId, events, retentionIsHigh(event.severity));
      gathered?.written.resolve(written);
      recorded = (await written).at(-1)!;
    }
    if (!recorded) this.#init.log.warn('an event was not recorded: its bucket is full or holds it already', { id: event.id, kind: event.kind });
    return { event, written: recorded };
  }

  /** Takes a bucket's gathered events out of waiting (their timer stopped), to be written by the caller. */
  #takeGathered(docId: DocId): Gathered | undefined {
    const gathered = this.#gathering.get(docId);
    if (gathered === undefined) return undefined;
    this.#gathering.delete(docId);
    this.#init.clock.clearTimeout(gathered.timer);
    for (const event of gathered.events) this.#gatheredIds.delete(event.id);
    return gathered;
  }

  #writeGathered(docId: DocId): void {
    const gathered = this.#takeGathered(docId);
    if (gathered !== undefined) gathered.written.resolve(this.#write(docId, gathered.events, false));
  }

  /**
   * Writes events into one bucket in one sealed change (in memory before this returns); resolves,
   * once stored, with whether each was recorded (not when the bucket holds its id or is full).
   */
  #write(docId: DocId, events: readonly FleetEvent[], durable: boolean): Promise<boolean[]> {
    const { store, identity } = this.#init;
    const recorded = events.map(() => false);
    const before = store.digest(docId);
    const counted = this.#ownEntries.get(docId);
    let entries = counted?.digest === before ? counted?.entries : undefined;
    let added = 0;
    const changed = store.change<EventsDocument>(docId, (draft) => {
      entries ??= bucketEntries(draft);
      events.forEach((event, i) => {
        recorded[i] = recordEvent(draft, event, entries! + added);
        if (recorded[i]) added++;
      });
    }, { durable, signer: identity });
    // The change is in memory now (it is being stored): the count goes with the digest it made,
    // or stays with the one before when nothing changed (repeats, a full bucket, a refused write).
    const after = store.digest(docId);
    if (entries !== undefined) setBounded(this.#ownEntries, docId, added > 0 && after !== before ? { digest: after, entries: entries + added } : { digest: before, entries }, OWN_BUCKETS_COUNTED);
    return changed.then(() => recorded);
  }

  /** Events, newest first, one per id (its earliest emission). */
  list(filter: EventFilter = {}): FleetEvent[] {
    const byId = new Map<string, FleetEvent>();
    for (const { events } of this.#byDoc.values()) {
      for (const event of events.values()) {
        if (!eventMatches(event, filter)) continue;
        const seen = byId.get(event.id);
        if (seen === undefined || event.at < seen.at) byId.set(event.id, event);
      }
    }
    const sorted = [...byId.values()].sort((a, b) => b.at - a.at || (a.id < b.id ? -1 : 1));
    return sorted.slice(0, Math.min(filter.limit ?? EVENTS_LIST_MAX, EVENTS_LIST_MAX));
  }

  /** Whether a received event bucket is taken in: a writer of this fleet, and not retired. */
  accepts(docId: string): boolean {
    const parsed = parseDocId(docId);
    if (parsed?.kind !== 'events') return false;
    if (isRetired(docId, this.#init.clock.now())) return false;
    return parsed.peerId === this.#init.self || this.#init.isWriter(parsed.peerId);
  }

  /** Buckets and distinct events held. */
  stats(): { buckets: number; events: number } {
    return { buckets: this.#byDoc.size, events: this.#known.size };
  }

  /** Deletes retired buckets now, and schedules the next check. */
  async prune(): Promise<void> {
    const { store, clock, log } = this.#init;
    if (this.#timer !== undefined) clock.clearTimeout(this.#timer);
    this.#timer = clock.setTimeout(() => void this.prune(), RETENTION_CHECK_MS);
    const retired = store.ids().filter((id) => isRetired(id, clock.now()));
    for (const id of retired) {
      try {
        await store.remove(id);
      } catch (error) {
        log.error('deleting a retired event bucket failed; trying again at the next check', { docId: id, error: String(error) });
      }
    }
    if (retired.length > 0) log.info('deleted event buckets past their retention', { count: retired.length });
  }

  /**
   * Brings the index of one bucket up to date with the store. A bucket only grows (one entry per
   * event, all day), so after the first read only the entries its new changes touched are read
   * again (Automerge's diff between the heads indexed and the heads held); a full read happens
   * when the bucket is new here, or when its history does not hold the heads indexed (it was
   * stored again from scratch).
   */
  #index(docId: DocId, announce: boolean): void {
    const { store } = this.#init;
    const digest = store.digest(docId);
    const previous = this.#byDoc.get(docId);
    if (previous?.digest === digest) return;
    if (digest === undefined) {
      for (const id of previous?.events.keys() ?? []) this.#forget(id);
      this.#byDoc.delete(docId);
      return;
    }
    const doc = store.get(docId);
    const heads = store.heads(docId);
    const touched = previous === undefined ? undefined : touchedEvents(doc, previous.heads, heads, previous.events);
    if (touched === undefined) {
      for (const id of previous?.events.keys() ?? []) this.#forget(id);
      const events = new Map<string, FleetEvent>();
      for (const event of readEvents(docId, doc)) events.set(event.id, event);
      this.#byDoc.set(docId, { digest, heads, events });
      for (const event of events.values()) this.#add(event, announce && previous?.events.has(event.id) !== true);
      return;
    }
    const events = previous!.events;
    this.#byDoc.set(docId, { digest, heads, events });
    for (const id of touched) {
      const before = events.get(id);
      const event = readEvent(docId, id, doc);
      if (before !== undefined) this.#forget(id);
      if (event === undefined) {
        events.delete(id);
        continue;
      }
      events.set(id, event);
      this.#add(event, announce && before === undefined);
    }
  }

  /** Counts one bucket's copy of `event`; announces it when no bucket held its id before and `announce`. */
  #add(event: FleetEvent, announce: boolean): void {
    const held = this.#known.get(event.id);
    if (held === undefined) this.#known.set(event.id, { event, count: 1 });
    else this.#known.set(event.id, { event: event.at < held.event.at ? event : held.event, count: held.count + 1 });
    if (announce && held === undefined) this.#listeners.emit(event);
  }

  #forget(id: string): void {
    const held = this.#known.get(id);
    if (held === undefined) return;
    if (held.count <= 1) this.#known.delete(id);
    else this.#known.set(id, { event: held.event, count: held.count - 1 });
  }
}

/**
 * The ids of the events whose entries changed between `from` and `to` in `doc`, or undefined when
 * that cannot be told (the history lacks `from`, or a change replaced the events map itself).
 */
function touchedEvents(doc: unknown, from: A.Heads, to: A.Heads, indexed: ReadonlyMap<string, unknown>): Set<string> | undefined {
  let patches: A.Patch[];
  try {
    patches = A.diff(doc as A.Doc<unknown>, from, to);
  } catch {
    return undefined;
  }
  const ids = new Set<string>();
  for (const patch of patches) {
    const path = patch.path;
    // An entry is events/ID (schema 1 and 2) or shards/DIGIT/ID (schema 3), or inside one.
    const id = path[0] === 'events' ? path[1] : path[0] === 'shards' ? path[2] : undefined;
    if (typeof id === 'string') {
      ids.add(id);
      continue;
    }
    // An empty map put where entries live (`events`, `shards`, a shard): new, or replacing one
    // (Automerge says the same for both, and nothing of the entries replaced), so every entry
    // indexed that could have lived there is read again.
    if ((path[0] === 'shards' && path.length <= 2) || (path[0] === 'events' && path.length === 1)) {
      if (patch.action !== 'put' || !isEmptyMap(patch.value)) return undefined;
      const shard = path[0] === 'shards' ? path[1] : undefined;
      for (const id of indexed.keys()) if (shard === undefined || shardOf(id) === shard) ids.add(id);
      continue;
    }
    // Anything else of the root (its schema) is no entry; a change to the root itself is read in full.
    if (path.length === 0) return undefined;
  }
  return ids;
}

function isEmptyMap(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0;
}

/** Events gathered for one bucket, and the outcome of their write (each emission waits on it). */
interface Gathered {
  readonly events: FleetEvent[];
  readonly written: PromiseWithResolvers<readonly boolean[]>;
  readonly timer: TimerId;
}

function retentionIsHigh(severity: Severity): boolean {
  return severity === 'high' || severity === 'critical';
}
