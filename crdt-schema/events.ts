import { ImmutableString } from '@automerge/automerge';
import { type DocId, PEER_ID_PATTERN, type RetentionClass, parseDocId } from './ids.ts';
import { plainEntry, toPlain } from './plain.ts';
import { LATEST_ENTRY_TIME_MS } from './time.ts';
import { markSchema } from './schema.ts';

/** How much an event matters (the original's levels). */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Days an event bucket is kept: the original's 90 days routine, 365 days high and critical. */
export const RETENTION_DAYS: Readonly<Record<RetentionClass, number>> = { routine: 90, high: 365 };

/** Events one bucket document holds at most (a writer's events of one day and class). */
export const EVENTS_PER_BUCKET_MAX = 5_000;

const DAY_MS = 86_400_000;
const KIND_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/;
const ID_PATTERN = /^[0-9a-f]{32}$/;
const MAX_DETAIL_CHARS = 1_000;
const MAX_PAYLOAD_KEYS = 16;
const MAX_PAYLOAD_VALUE_CHARS = 200;

/** A fleet event as readers see it. */
export interface FleetEvent {
  /** 32 hex characters; emitters derive it from what the event is about, so repeating an emission is harmless. */
  readonly id: string;
  /** `area.what`, e.g. `system.instance_silent`. */
  readonly kind: string;
  readonly severity: Severity;
  readonly at: number;
  /** What the event is about (a member's peer id, a singleton's name), if anything. */
  readonly subject?: string;
  readonly detail: string;
  readonly payload?: Readonly<Record<string, string | number>>;
  /** Who emitted it: the node, and the singleton and epoch when a control-plane actor did. */
  readonly source: { readonly peer: string; readonly singleton?: string; readonly epoch?: number };
}

/** What a listing keeps. `severity` is a floor: `high` lists high and critical. `kind` is exact, or a prefix ending in `*` (`system.*`). */
export interface EventFilter {
  readonly kind?: string;
  readonly severity?: Severity;
  readonly subject?: string;
  readonly sinceMs?: number;
  readonly limit?: number;
}

/** Whether `event` passes `filter` (its limit aside). */
export function eventMatches(event: FleetEvent, filter: EventFilter): boolean {
  if (filter.severity !== undefined && SEVERITIES.indexOf(event.severity) < SEVERITIES.indexOf(filter.severity)) return false;
  if (filter.kind !== undefined) {
    const prefix = filter.kind.endsWith('*') ? filter.kind.slice(0, -1) : undefined;
    if (prefix === undefined ? event.kind !== filter.kind : !event.kind.startsWith(prefix)) return false;
  }
  if (filter.subject !== undefined && event.subject !== filter.subject) return false;
  return filter.sinceMs === undefined || event.at >= filter.sinceMs;
}

/** One entry of a bucket: an event as one JSON string (schema 2 on), or a map of its fields (schema 1). */
export type EventEntry = ImmutableString | { kind: ImmutableString; severity: ImmutableString; at: number; subject?: ImmutableString; detail: ImmutableString; payload?: Record<string, ImmutableString | number>; singleton?: ImmutableString; epoch?: number };

/** An event bucket as Automerge holds it. */
export interface EventsDocument {
  schema: number;
  /**
   * Schema 3: the entries in 16 maps, by the first hex digit of the event id. Automerge's view of a
   * document is immutable: a change to one key of a map copies the whole map into the next view,
   * so one map of a day's 5,000 entries made every emission, and every reader's change, copy 5,000
   * entries (2.9 ms an emission at the end of the day against 0.3 ms in 16 maps).
   */
  shards?: Record<string, Record<string, EventEntry>>;
  /**
   * Schema 1 and 2 buckets: every entry in one map (schema 2: each event as one JSON string, one
   * operation where a map of its fields was about a dozen; schema 1: maps). Read as they were; a
   * schema 3 writer that carries on such a bucket adds to `shards`.
   */
  events?: Record<string, EventEntry>;
}

/** The shard of `shards` that holds the event of `id` (32 hex characters). */
export function shardOf(id: string): string {
  return id[0]!;
}

/** The keys of `shards`: the hex digits. */
const SHARD_KEYS = [...'0123456789abcdef'];

/** Thrown when an event cannot be recorded as given; the message says what is wrong. */
export class InvalidEventError extends Error {
  override name = 'InvalidEventError';
}

/** The retention class of a severity. */
export function retentionOf(severity: Severity): RetentionClass {
  return severity === 'high' || severity === 'critical' ? 'high' : 'routine';
}

/** The UTC day of a time, `yyyy-mm-dd`. */
export function dayOf(atMs: number): string {
  return new Date(atMs).toISOString().slice(0, 10);
}

/** The bucket an event of `severity` emitted by `peer` at `atMs` goes to. */
export function eventsDocId(peer: string, severity: Severity, atMs: number): DocId {
  if (!PEER_ID_PATTERN.test(peer)) throw new RangeError(`not a peer id: ${peer}`);
  return `events/${retentionOf(severity)}/${dayOf(atMs)}/${peer}` as DocId;
}

/**
 * True for an event bucket older than its retention at `nowMs`. Every node applies this rule
 * with its own clock, deletes what it retires, and takes in no retired bucket.
 */
export function isRetired(docId: string, nowMs: number): boolean {
  const parsed = parseDocId(docId);
  if (parsed?.kind !== 'events') return false;
  return isDayRetired(parsed.day, nowMs, RETENTION_DAYS[parsed.retention]);
}

/** Whether a bucket of `day` (`yyyy-mm-dd`) kept `retentionDays` after it is past that at `nowMs`. */
export function isDayRetired(day: string, nowMs: number, retentionDays: number): boolean {
  return day < dayOf(nowMs - retentionDays * DAY_MS);
}

/** Checks an event before it is written; throws {@link InvalidEventError}. */
export function checkEvent(event: FleetEvent): void {
  if (!ID_PATTERN.test(event.id)) throw new InvalidEventError(`event id ${JSON.stringify(event.id)} is not 32 hex characters`);
  if (!KIND_PATTERN.test(event.kind) || event.kind.length > 64) throw new InvalidEventError(`event kind ${JSON.stringify(event.kind)} is not of the form area.what (lowercase, at most 64 characters)`);
  if (!(SEVERITIES as readonly string[]).includes(event.severity)) throw new InvalidEventError(`severity must be one of ${SEVERITIES.join(', ')}`);
  if (event.detail.length > MAX_DETAIL_CHARS) throw new InvalidEventError(`event detail is over ${MAX_DETAIL_CHARS} characters`);
  // A time a reader can show (a writer's Infinity or 1e300 broke `powernode events`), an epoch a whole number.
  // (Not necessarily whole ms: a simulated clock runs in fractions.)
  if (!(Number.isFinite(event.at) && event.at >= 0 && event.at <= LATEST_ENTRY_TIME_MS)) throw new InvalidEventError(`event time ${event.at} is not a time from 1970 to the end of year 9999`);
  if (event.source.epoch !== undefined && !(Number.isSafeInteger(event.source.epoch) && event.source.epoch >= 0)) throw new InvalidEventError(`event epoch ${event.source.epoch} is not a whole number`);
  if ((event.subject?.length ?? 0) > 200) throw new InvalidEventError('event subject is over 200 characters');
  const payload = Object.entries(event.payload ?? {});
  if (payload.length > MAX_PAYLOAD_KEYS) throw new InvalidEventError(`an event payload has at most ${MAX_PAYLOAD_KEYS} keys`);
  for (const [key, value] of payload) {
    if (key.length > 64 || (typeof value === 'string' && value.length > MAX_PAYLOAD_VALUE_CHARS)) throw new InvalidEventError(`event payload entry ${key} is too long`);
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) throw new InvalidEventError(`event payload entry ${key} is neither a string nor a number`);
  }
}

/**
 * How many entries a bucket holds. Reflect.ownKeys asks the document for a map's keys in one
 * call, but that is still a string per entry (Object.keys on a draft would also read every entry,
 * a property descriptor each): a writer that knows the count (its own bucket, counted once)
 * passes it to {@link recordEvent} instead.
 */
export function bucketEntries(draft: EventsDocument): number {
  let entries = isMap(draft.events) ? stringKeys(draft.events) : 0;
  if (isMap(draft.shards)) for (const shard of Object.values(draft.shards)) if (isMap(shard)) entries += stringKeys(shard);
  return entries;
}

/** A map's keys but for symbols (a materialized document's maps carry a few; a draft's list none). */
function stringKeys(map: object): number {
  let count = 0;
  for (const key of Reflect.ownKeys(map)) if (typeof key === 'string') count++;
  return count;
}

/**
 * Adds `event` to a bucket. Returns false when the bucket already holds that id (the emission
 * is a repeat) or is full. `entries`: how many the bucket holds (see {@link bucketEntries}), when
 * the caller knows.
 */
export function recordEvent(draft: EventsDocument, event: FleetEvent, entries?: number): boolean {
  checkEvent(event);
  markSchema(draft, 'events');
  // Every shard is made with `shards`, in one change: a map made in two changes that do not see
  // each other (a writer that restarted after losing an unsynced change its peers hold) is two
  // maps, of which one wins and the other's entries are gone. One creation point, as schema 2's
  // `events` was.
  if (draft.shards === undefined) draft.shards = Object.fromEntries(SHARD_KEYS.map((key) => [key, {}]));
  const key = shardOf(event.id);
  if (draft.events?.[event.id] !== undefined || draft.shards[key]?.[event.id] !== undefined || (entries ?? bucketEntries(draft)) >= EVENTS_PER_BUCKET_MAX) return false;
  const entry = {
    kind: event.kind,
    severity: event.severity,
    at: event.at,
    detail: event.detail,
    ...(event.subject === undefined ? {} : { subject: event.subject }),
    ...(event.payload === undefined ? {} : { payload: event.payload }),
    ...(event.source.singleton === undefined ? {} : { singleton: event.source.singleton }),
    ...(event.source.epoch === undefined ? {} : { epoch: event.source.epoch }),
  };
  if (draft.shards[key] === undefined) draft.shards[key] = {};
  draft.shards[key]![event.id] = new ImmutableString(JSON.stringify(entry));
  return true;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A bucket's entry maps as received (a faulty writer's may be anything): `events` (any id), and
 * each shard with the key its ids must start with — an entry anywhere else is read nowhere, so
 * a full read and a reader that follows one id ({@link readEvent}) always agree.
 */
function entryMaps(doc: unknown): Array<{ readonly shard: string | undefined; readonly entries: Record<string, unknown> }> {
  const root = doc as { events?: unknown; shards?: unknown } | undefined;
  const maps: Array<{ shard: string | undefined; entries: Record<string, unknown> }> = [];
  if (isMap(root?.events)) maps.push({ shard: undefined, entries: root.events });
  if (isMap(root?.shards)) {
    for (const shard of SHARD_KEYS) {
      const entries = Object.hasOwn(root.shards, shard) ? root.shards[shard] : undefined;
      if (isMap(entries)) maps.push({ shard, entries });
    }
  }
  return maps;
}

/** The events of one bucket as plain data; malformed entries (a faulty writer) are left out. */
export function readEvents(docId: string, doc: unknown): FleetEvent[] {
  const parsed = parseDocId(docId);
  if (parsed?.kind !== 'events') return [];
  const out: FleetEvent[] = [];
  const seen = new Set<string>();
  for (const { shard, entries } of entryMaps(doc)) {
    for (const id of Object.keys(entries)) {
      if (seen.has(id) || (shard !== undefined && shardOf(id) !== shard)) continue;
      const event = eventOf(parsed.peerId, id, entries[id]);
      if (event === undefined) continue;
      seen.add(id);
      out.push(event);
    }
  }
  return out;
}

/** The event `id` of a bucket as plain data; undefined when the bucket has no such entry or it is malformed. */
export function readEvent(docId: string, id: string, doc: unknown): FleetEvent | undefined {
  const parsed = parseDocId(docId);
  if (parsed?.kind !== 'events') return undefined;
  const root = doc as { events?: unknown; shards?: unknown } | undefined;
  const shard = isMap(root?.shards) && Object.hasOwn(root.shards, shardOf(id)) ? root.shards[shardOf(id)] : undefined;
  for (const entries of [root?.events, shard]) {
    if (!isMap(entries) || !Object.hasOwn(entries, id)) continue;
    const event = eventOf(parsed.peerId, id, entries[id]);
    if (event !== undefined) return event;
  }
  return undefined;
}

/** An event entry as JSON is at most this long (detail, subject and payload are bounded by {@link checkEvent}). */
const MAX_EVENT_JSON_CHARS = 64 * 1024;

function eventOf(writer: string, id: string, entry: unknown): FleetEvent | undefined {
  const raw = plainEntry(entry, MAX_EVENT_JSON_CHARS);
  if (raw === undefined) return undefined;
  const { kind, severity, at, subject, detail, payload, singleton, epoch } = raw;
  if (typeof kind !== 'string' || typeof severity !== 'string' || typeof at !== 'number' || typeof detail !== 'string') return undefined;
  const event: FleetEvent = {
    id,
    kind,
    severity: severity as Severity,
    at,
    detail,
    ...(typeof subject === 'string' ? { subject } : {}),
    ...(payload !== null && typeof payload === 'object' ? { payload: payload as Record<string, string | number> } : {}),
    source: { peer: writer, ...(typeof singleton === 'string' ? { singleton } : {}), ...(typeof epoch === 'number' ? { epoch } : {}) },
  };
  try {
    checkEvent(event);
  } catch {
    return undefined;
  }
  return event;
}
