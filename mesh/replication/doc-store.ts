import * as A from '@automerge/automerge';
import { type DocId, SchemaTooNewError, checkSchema, parseDocId } from '../../crdt-schema/index.ts';
import type { Clock, TimerId } from '../ports/clock.ts';
import { Listeners, type PeerId } from '../ports/transport.ts';
import type { Storage, StorageOp } from '../ports/storage.ts';
import type { Logger } from '../logger.ts';
import { decodeCbor, encodeCbor } from '../wire/protocol.ts';
import { type Seal, signSeal } from '../trust/seals.ts';
import { toBase64Url } from '../trust/keys.ts';
import { headsDigest, openRecord, sealRecord } from './record-codec.ts';

/** A document as the store holds it. Its root shape is the document kind's business. */
export type AnyDoc = A.Doc<Record<string, unknown>>;

/**
 * Emitted after a document changed in memory: a received change and a local one that is not
 * durable while it is persisted, a durable local change once it is stored (or its write failed).
 */
export interface DocChanged {
  readonly docId: DocId;
  /** `local` for changes made on this node, else the peer the change came from. */
  readonly origin: 'local' | PeerId;
}

/** A document that could not be loaded, and why. */
export interface DocProblem {
  readonly docId: string;
  readonly problem: 'damaged' | 'schema-too-new';
  readonly detail: string;
  readonly at: number;
}

export interface DocStoreInit {
  readonly storage: Storage;
  readonly clock: Clock;
  /** This node's Automerge actor id (hex), used for every local change. */
  readonly actorId: string;
  readonly log: Logger;
  readonly compactAfterIncrements?: number;
  readonly compactAfterBytes?: number;
  /** The fleet seals are made for (needed to sign local changes). */
  readonly fleetId?: string;
  /**
   * Lets the stores of many nodes in one process (the simulator's fleet) hold one instance of each
   * identical document version. Held documents are never changed in place (every change and
   * every received change is made on a clone), so sharing them is invisible to the store.
   */
  readonly interner?: DocumentInterner;
}

/**
 * Shares immutable document versions between stores in one process: a version (document id and
 * heads digest) is held once however many stores hold it, counted until each lets it go.
 */
export interface DocumentInterner {
  /** The one instance of `docId` at `digest` (`doc` itself when none is held yet), counted as held once more. */
  hold(docId: DocId, digest: string, doc: AnyDoc): AnyDoc;
  /** One holder of `docId` at `digest` let it go. */
  release(docId: DocId, digest: string): void;
  /**
   * A document loaded from saved bytes, shared with other stores that loaded the same bytes:
   * `parts` are a stored document's records (snapshot, or an empty part, then its increments) or
   * a received snapshot (one part); equal parts give the same document.
   */
  load(docId: DocId, parts: readonly Uint8Array[], loadFresh: () => AnyDoc): AnyDoc;
}

/** A writer key that seals local changes. */
export interface SealSigner {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
}

export const DEFAULT_COMPACT_AFTER_INCREMENTS = 64;
export const DEFAULT_COMPACT_AFTER_BYTES = 256 * 1024;
/**
 * Largest stored size of one document (its snapshot plus increments). Keeps every snapshot and
 * sync message well under the sync protocol's 8 MiB frame cap.
 */
export const MAX_DOC_BYTES = 4 * 1024 * 1024;

/** Thrown when a change would make a document larger than {@link MAX_DOC_BYTES}. */
export class DocTooLargeError extends Error {
  override name = 'DocTooLargeError';
}

/** Thrown when writing to a document this node keeps untouched (a newer schema wrote it). */
export class DocLockedError extends Error {
  override name = 'DocLockedError';
}

interface Entry {
  doc: AnyDoc;
  savedHeads: A.Heads;
  digest: string;
  nextSeq: number;
  snapshotBytes: number;
  incrementCount: number;
  incrementBytes: number;
  /** Set when a write failed: the next write must be a full snapshot, as increments after it would depend on the lost one. */
  forceSnapshot: boolean;
  /** Whether `doc` is held through the interner (then released when replaced). */
  interned: boolean;
  /**
   * The latest seal of each writer: none, one writer's alone, or a map by signer (base64url) once
   * there are more. Most documents have one writer (a node's own): a map for each would be a
   * million maps in a simulated fleet of 1,000 nodes.
   */
  seals: Seal | Map<string, Seal> | undefined;
  queue: Promise<void>;
  /** Durable local changes held in memory whose listeners are not told yet (they are being stored). */
  unannounced: number;
  /** Writes waiting for the one under way to finish: they are stored together, in one batch. */
  gathering: WriteBatch | undefined;
}

/** One change's records, waiting to be stored. */
interface PendingWrite {
  readonly seq: number;
  readonly increment: Uint8Array;
  /** A snapshot of the document as of this change (compaction), covering every increment before it. */
  readonly snapshot: Uint8Array | undefined;
  readonly durable: boolean;
  readonly seals: readonly Seal[];
}

/** Writes of one document stored in one storage batch (settles when that batch does). */
interface WriteBatch {
  readonly writes: PendingWrite[];
  done: Promise<void>;
}

/** A document's stored records as one byte string (what identifies them to an interner). */
const NO_BYTES = new Uint8Array();

/**
 * Seals decoded from stored records, by document, with the record bytes they were decoded from:
 * stores in one process that hold the same seal (a simulated fleet, where every node holds every
 * member's) share one immutable object instead of decoding a copy each — at 1,000 nodes, a
 * million. Found by comparing bytes (a key string of the record's bytes cost a microsecond a seal
 * to build and hash). Bounded.
 */
const storedSeals = new Map<string, Array<{ readonly bytes: Buffer; readonly seal: Seal }>>();
const STORED_SEALS_MAX = 20_000;
/** Versions of one document's seals kept (each read compares against them in turn). */
const SEALS_KEPT_PER_DOC = 16;
let storedSealCount = 0;

function storedSeal(docId: string, value: Uint8Array): Seal {
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  let known = storedSeals.get(docId);
  if (known !== undefined) for (const held of known) if (held.bytes.equals(bytes)) return held.seal;
  const record = decodeCbor(openRecord(value)) as { heads: string[]; signer: Uint8Array; signature: Uint8Array };
  const seal: Seal = Object.freeze({ docId, heads: Object.freeze([...record.heads]) as string[], signer: new Uint8Array(record.signer), signature: new Uint8Array(record.signature) });
  if (storedSealCount >= STORED_SEALS_MAX) {
    storedSeals.clear();
    storedSealCount = 0;
    known = undefined;
  }
  if (known === undefined) storedSeals.set(docId, (known = []));
  // Every seal kept counts towards the bound; one document's oldest makes room for its newest.
  if (known.push({ bytes: Buffer.from(bytes), seal }) > SEALS_KEPT_PER_DOC) known.shift();
  else storedSealCount++;
  return seal;
}

/** Keeps `seal` as its signer's latest for `entry` (`signer`: its key in base64url). */
function keepSeal(entry: Entry, seal: Seal, signer = toBase64Url(seal.signer)): void {
  const held = entry.seals;
  if (held instanceof Map) held.set(signer, seal);
  else if (held === undefined || Buffer.compare(held.signer, seal.signer) === 0) entry.seals = seal;
  else entry.seals = new Map([[toBase64Url(held.signer), held], [signer, seal]]);
}

/**
 * What loading a document found of it, by document instance: its heads, their digest, and whether
 * its history misses changes. Stores that share one loaded instance (an interner) read it once.
 */
const loadedFacts = new WeakMap<object, { readonly heads: A.Heads; readonly digest: string; readonly complete: boolean }>();

function factsOf(doc: AnyDoc): { readonly heads: A.Heads; readonly digest: string; readonly complete: boolean } {
  let facts = loadedFacts.get(doc);
  if (facts === undefined) {
    const heads = A.getHeads(doc);
    facts = { heads, digest: headsDigest(heads), complete: A.getMissingDeps(doc, []).length === 0 };
    loadedFacts.set(doc, facts);
  }
  return facts;
}

const SEQ_DIGITS = 12;
/** How soon a document whose write failed is stored again. */
const REPAIR_DELAY_MS = 1_000;
/** What a new entry holds until its first change or adoption: empty, read-only, shared by all entries. */
const NO_DOCUMENT: AnyDoc = A.init<Record<string, unknown>>();
/** What a new entry's write queue starts from: nothing queued (one promise for every entry). */
const SETTLED: Promise<void> = Promise.resolve();
const seqKey = (seq: number): string => seq.toString().padStart(SEQ_DIGITS, '0');

/**
 * The node's replicated documents, in memory and in storage. Every change is written as an
 * increment, in order per document; increments fold into a snapshot from time to time. A
 * document whose stored bytes are damaged is quarantined and restarts empty, so replication
 * refills it from peers; no other document is touched.
 */
export class DocStore {
  readonly #init: DocStoreInit;
  readonly #entries = new Map<DocId, Entry>();
  /** Bumped whenever any document changes, is added or removed (keys caches of what is held). */
  #version = 0;
  /** `ids()` as last computed; dropped when a document is added or removed. */
  #sortedIds: DocId[] | undefined;
  readonly #problems = new Map<string, DocProblem>();
  readonly #changed = new Listeners<DocChanged>();
  readonly #repairs = new Map<DocId, TimerId>();
  #closed = false;
  readonly #compactAfterIncrements: number;
  readonly #compactAfterBytes: number;

  private constructor(init: DocStoreInit) {
    this.#init = init;
    this.#compactAfterIncrements = init.compactAfterIncrements ?? DEFAULT_COMPACT_AFTER_INCREMENTS;
    this.#compactAfterBytes = init.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES;
  }

  /** Loads every stored document. Damaged ones are reported, quarantined and restarted empty. */
  static async open(init: DocStoreInit): Promise<DocStore> {
    const store = new DocStore(init);
    const records = await init.storage.range(['doc']);
    const byDoc = new Map<string, { snapshot?: Uint8Array; increments: Array<{ seq: number; bytes: Uint8Array }> }>();
    for (const { key, value } of records) {
      const [, docId, part, seq] = key;
      if (docId === undefined) continue;
      const group = byDoc.get(docId) ?? { increments: [] };
      if (part === 'snap') group.snapshot = value;
      else if (part === 'inc' && seq !== undefined) group.increments.push({ seq: Number(seq), bytes: value });
      byDoc.set(docId, group);
    }
    for (const [docId, group] of byDoc) await store.#loadOne(docId, group);
    await store.#loadSeals();
    return store;
  }

  /** Seals were verified when they arrived (or made here); storage is checksummed. */
  async #loadSeals(): Promise<void> {
    for (const { key, value } of await this.#init.storage.range(['seal'])) {
      const entry = this.#entries.get(key[1] as DocId);
      if (entry === undefined || key[2] === undefined) continue;
      try {
        keepSeal(entry, storedSeal(key[1]!, value), key[2]);
      } catch (error) {
        this.#init.log.warn('a stored seal is damaged; it will come again from peers', { docId: key[1], error: String(error) });
      }
    }
  }

  async #loadOne(docId: string, group: { snapshot?: Uint8Array; increments: Array<{ seq: number; bytes: Uint8Array }> }): Promise<void> {
    const parsed = parseDocId(docId);
    if (parsed === undefined) {
      this.#init.log.warn('stored document has an unknown id; left as is', { docId });
      return;
    }
    const actor = this.#init.actorId;
    try {
      const loadStored = (): AnyDoc => {
        let loaded = group.snapshot === undefined ? A.init<Record<string, unknown>>({ actor }) : A.load<Record<string, unknown>>(openRecord(group.snapshot), { actor });
        for (const increment of group.increments) loaded = A.loadIncremental(loaded, openRecord(increment.bytes));
        return loaded;
      };
      const incrementBytes = group.increments.reduce((sum, increment) => sum + increment.bytes.length, 0);
      // Stores holding the very same records (a simulated fleet founded offline) load them once.
      const interner = this.#init.interner;
      const doc = interner === undefined ? loadStored() : interner.load(docId as DocId, [group.snapshot ?? NO_BYTES, ...group.increments.map((increment) => increment.bytes)], loadStored);
      const { heads, digest, complete } = factsOf(doc);
      if (!complete) throw new Error('changes are missing from its history');
      checkSchema(docId, parsed.kind, doc);
      const lastSeq = group.increments.at(-1)?.seq ?? 0;
      this.#sortedIds = undefined;
      this.#entries.set(docId as DocId, {
        doc: interner === undefined ? doc : interner.hold(docId as DocId, digest, doc),
        interned: interner !== undefined,
        savedHeads: heads,
        digest,
        nextSeq: lastSeq + 1,
        snapshotBytes: group.snapshot?.length ?? 0,
        incrementCount: group.increments.length,
        incrementBytes,
        forceSnapshot: false,
        seals: undefined,
        queue: SETTLED,
        unannounced: 0,
        gathering: undefined,
      });
    } catch (error) {
      if (error instanceof SchemaTooNewError) {
        // Not damage: a newer release wrote it. Keep the bytes untouched for that release.
        this.#report(docId, 'schema-too-new', error.message);
        return;
      }
      await this.#quarantine(docId, (error as Error).message);
    }
  }

  async #quarantine(docId: string, detail: string): Promise<void> {
    const { storage, clock, log } = this.#init;
    const at = clock.now();
    log.error('stored document is damaged; quarantined, it will be recovered from peers', { docId, detail });
    this.#report(docId, 'damaged', detail);
    const records = await storage.range(['doc', docId]);
    const ops: StorageOp[] = [];
    for (const { key, value } of records) {
      ops.push({ type: 'put', key: ['quarantine', docId, String(at), ...key.slice(2)], value });
      ops.push({ type: 'delete', key });
    }
    await storage.batch(ops, { sync: true });
  }

  #report(docId: string, problem: DocProblem['problem'], detail: string): void {
    this.#problems.set(docId, { docId, problem, detail, at: this.#init.clock.now() });
  }

  /** Changes with every change to what the store holds: equal versions mean the same documents and heads. */
  get version(): number {
    return this.#version;
  }

  /** Ids of the documents held, sorted. */
  ids(): DocId[] {
    return [...this.heldIds()];
  }

  /** {@link DocStore.ids}, never to be changed: the same array until a document comes or goes. */
  heldIds(): readonly DocId[] {
    this.#sortedIds ??= [...this.#entries.keys()].sort();
    return this.#sortedIds;
  }

  get(docId: DocId): AnyDoc | undefined {
    return this.#entries.get(docId)?.doc;
  }

  has(docId: DocId): boolean {
    return this.#entries.has(docId);
  }

  heads(docId: DocId): A.Heads {
    const entry = this.#entries.get(docId);
    return entry === undefined ? [] : A.getHeads(entry.doc);
  }

  /**
   * Joins a document's concurrent heads into one with an empty change (it changes no value), so
   * what it holds now is named by one head: an operator revocation's cut, which a member could
   * otherwise make too long to sign by merging empty changes of many actors. Resolves with the
   * heads once stored (fsynced); a document with at most one head is left as it is. Undefined
   * when the document is not held.
   */
  async joinHeads(docId: DocId): Promise<A.Heads | undefined> {
    const entry = this.#entries.get(docId);
    if (entry === undefined) return undefined;
    const heads = A.getHeads(entry.doc);
    if (heads.length <= 1) return heads;
    this.#assertWritable(docId);
    const joined = A.emptyChange(this.fork(entry.doc), { time: Math.floor(this.#init.clock.now() / 1000) });
    await this.#commit(docId, entry, joined, 'local', true, []);
    return A.getHeads(joined);
  }

  /** 16-hex digest of the document's heads; equal digests mean equal documents. */
  digest(docId: DocId): string | undefined {
    return this.#entries.get(docId)?.digest;
  }

  /** Documents that failed to load (damaged or too new), with what went wrong. */
  problems(): DocProblem[] {
    return [...this.#problems.values()].sort((a, b) => (a.docId < b.docId ? -1 : 1));
  }

  /** Stored size of a document: its snapshot plus increments (an upper bound of its saved size). */
  storedBytes(docId: DocId): number {
    const entry = this.#entries.get(docId);
    return entry === undefined ? 0 : entry.snapshotBytes + entry.incrementBytes;
  }

  /** True for a document kept untouched because a newer release wrote it (schema too new). */
  isLocked(docId: string): boolean {
    return this.#problems.get(docId)?.problem === 'schema-too-new';
  }

  /**
   * True while a durable local change of `docId` is held in memory but still being stored: its
   * listeners hear of it once it is on disk (the replicator pushes it then).
   */
  announcing(docId: DocId): boolean {
    return (this.#entries.get(docId)?.unannounced ?? 0) > 0;
  }

  onChanged(listener: (event: DocChanged) => void): () => void {
    return this.#changed.add(listener);
  }

  /** The latest seal of each writer of a document. */
  seals(docId: DocId): Seal[] {
    const seals = this.#entries.get(docId)?.seals;
    return seals === undefined ? [] : seals instanceof Map ? [...seals.values()] : [seals];
  }

  /**
   * Makes a local change (creating the document if needed) and resolves once it is stored
   * (`durable`: fsynced). With `signer`, the new heads are sealed in the same write, before any
   * peer can be sent the change. Resolves `false` without writing when nothing changed.
   *
   * The change is made in memory before this returns its promise: `get`, `version` and readers
   * see it at once, while it is being stored. Callers rely on that (a pools owner answers a
   * claim once its record is in memory and the member's record is durable), so nothing here may
   * await before the change is committed to memory.
   */
  async change<T>(docId: DocId, mutate: (draft: T) => void, options: { durable?: boolean; signer?: SealSigner } = {}): Promise<boolean> {
    this.#assertWritable(docId);
    const created = !this.#entries.has(docId);
    const entry = this.#entryFor(docId);
    const before = entry.doc;
    // The held document is changed in place when it is this store's own: a clone costs what the
    // document holds (an event bucket grows all day), on every local change. What read `before`
    // keeps reading it as it was (Automerge leaves it a view at its heads, and the store hands out
    // no document to change). The shared empty document, a shared (interned) one and one with
    // another actor are changed on a clone with this store's actor.
    const inPlace = before !== NO_DOCUMENT && !entry.interned && A.getActorId(before) === this.#init.actorId;
    const fork = inPlace ? before : this.fork(before);
    const headsBefore = A.getHeads(before);
    const after = A.change(fork, { time: Math.floor(this.#init.clock.now() / 1000) }, mutate as unknown as A.ChangeFn<Record<string, unknown>>);
    if (A.getHeads(after).join() === headsBefore.join()) {
      // Nothing written: a document this call made for it is not held (no listener hears of it).
      if (created && this.#entries.get(docId) === entry) {
        this.#entries.delete(docId);
        this.#sortedIds = undefined;
      }
      return false;
    }
    const seals = options.signer === undefined ? [] : [signSeal(this.#requireFleetId(), docId, A.getHeads(after), options.signer)];
    try {
      await this.#commit(docId, entry, after, 'local', options.durable === true, seals);
    } catch (error) {
      // Refused before it was taken (too large): the held document goes back to what it was
      // (a clone of `before`, which Automerge left a view at the heads before this change).
      if (inPlace && error instanceof DocTooLargeError && entry.doc === before) entry.doc = this.fork(before);
      throw error;
    }
    return true;
  }

  #requireFleetId(): string {
    if (this.#init.fleetId === undefined) throw new Error('DocStore needs a fleetId to seal changes');
    return this.#init.fleetId;
  }

  /**
   * Replaces a document with `next`, a descendant that replication has already verified. Resolves
   * once stored.
   */
  async adopt(docId: DocId, next: AnyDoc, origin: PeerId, seals: readonly Seal[] = []): Promise<void> {
    this.#assertWritable(docId);
    const current = this.#entries.get(docId)?.doc;
    // Sessions with several peers verify what they received concurrently: `next` may have been
    // forked from a version this store has since moved past. Taking it as it is would drop those
    // changes here (while sync states believe they are held, so peers never resend them), so it is
    // merged with what is held; both sides were verified when they arrived.
    if (current !== undefined && A.getMissingDeps(next, A.getHeads(current)).length > 0) {
      next = A.merge(this.fork(next), current);
    }
    // A sync round that brought nothing new must not create or touch a document.
    if (A.getHeads(next).join() === (current === undefined ? '' : A.getHeads(current).join())) return;
    this.#problems.delete(docId);
    await this.#commit(docId, this.#entryFor(docId), next, origin, false, seals);
  }

  #assertWritable(docId: string): void {
    if (this.isLocked(docId)) {
      throw new DocLockedError(`document ${docId} was written by a newer powernode release; this node leaves it untouched: upgrade powernode`);
    }
  }

  /**
   * A document loaded from saved bytes, not yet stored (throws if the bytes are not a document).
   * With an interner, bytes another store loaded already give that (immutable) document.
   */
  load(bytes: Uint8Array, docId?: DocId): AnyDoc {
    const loadFresh = (): AnyDoc => A.load<Record<string, unknown>>(bytes, { actor: this.#init.actorId });
    const interner = this.#init.interner;
    return interner === undefined || docId === undefined ? loadFresh() : interner.load(docId, [bytes], loadFresh);
  }

  /** A writable copy of `doc` with this node's actor (held documents are never changed in place). */
  fork(doc: AnyDoc): AnyDoc {
    return A.clone(doc, { actor: this.#init.actorId });
  }

  /** An empty document for `docId` with this node's actor, not yet stored. */
  empty(): AnyDoc {
    return A.init<Record<string, unknown>>({ actor: this.#init.actorId });
  }

  #entryFor(docId: DocId): Entry {
    let entry = this.#entries.get(docId);
    if (entry === undefined) {
      entry = {
        // Replaced by the first change or adoption (a change forks it): an empty document made
        // for each new entry costs ~0.3 ms, a thousand times over when a node joins a fleet.
        doc: NO_DOCUMENT,
        savedHeads: [],
        digest: headsDigest([]),
        nextSeq: 1,
        snapshotBytes: 0,
        incrementCount: 0,
        incrementBytes: 0,
        forceSnapshot: false,
        interned: false,
        seals: undefined,
        queue: SETTLED,
        unannounced: 0,
        gathering: undefined,
      };
      if (!this.#entries.has(docId)) this.#sortedIds = undefined;
      this.#entries.set(docId, entry);
    }
    return entry;
  }

  async #commit(docId: DocId, entry: Entry, next: AnyDoc, origin: 'local' | PeerId, durable: boolean, seals: readonly Seal[]): Promise<void> {
    // Everything up to the enqueue is synchronous, so increments are cut in change order.
    const increment = A.saveSince(next, entry.savedHeads);
    if (entry.snapshotBytes + entry.incrementBytes + increment.length > MAX_DOC_BYTES) {
      if (entry.incrementCount === 0 && entry.snapshotBytes === 0) {
        this.#entries.delete(docId);
        this.#sortedIds = undefined;
      }
      throw new DocTooLargeError(`document ${docId} would exceed ${MAX_DOC_BYTES} bytes`);
    }
    const seq = entry.nextSeq++;
    const heads = A.getHeads(next);
    const digest = headsDigest(heads);
    const interner = this.#init.interner;
    if (interner !== undefined && entry.interned) interner.release(docId, entry.digest);
    entry.doc = interner === undefined ? next : interner.hold(docId, digest, next);
    entry.interned = interner !== undefined;
    for (const seal of seals) keepSeal(entry, seal);
    entry.savedHeads = heads;
    entry.digest = digest;
    entry.incrementCount++;
    entry.incrementBytes += increment.length;
    const compact = entry.incrementCount >= this.#compactAfterIncrements || entry.incrementBytes >= this.#compactAfterBytes;
    const snapshot = compact ? A.save(next) : undefined;
    if (snapshot !== undefined) {
      entry.snapshotBytes = snapshot.length;
      entry.incrementCount = 0;
      entry.incrementBytes = 0;
    }
    const written = this.#enqueue(docId, entry, { seq, increment, snapshot, durable, seals });
    this.#version++;
    if (durable && origin === 'local') {
      // Listeners hear of a durable change once it is on disk (before change() resolves): no peer
      // is pushed a change this node could still lose (a pool member's claim, a promise), and
      // their work — replication pushes, caches, the console's fan-out — does not run while the
      // caller waits for the write. Readers see it at once all the same (get, version).
      entry.unannounced++;
      const notify = (): void => {
        entry.unannounced--;
        this.#emit({ docId, origin });
      };
      void written.then(notify, notify);
    } else {
      this.#emit({ docId, origin });
    }
    await written;
  }

  /**
   * Queues a change's records. While a write of the document is under way, the changes made
   * meanwhile gather and are then stored together, in one batch (one fsync if any of them is
   * durable): each is acknowledged when that batch is stored, and their listeners hear of them in
   * one tick, so replication pushes them in one message. A pools owner recording claims made at
   * once, and its own claim as a member behind them, waited for one fsync each, in turn.
   */
  #enqueue(docId: DocId, entry: Entry, write: PendingWrite): Promise<void> {
    const open = entry.gathering;
    if (open !== undefined) {
      open.writes.push(write);
      return open.done;
    }
    const batch: WriteBatch = { writes: [write], done: Promise.resolve() };
    entry.gathering = batch;
    batch.done = entry.queue.then(() => {
      // From here on, changes gather for the next batch.
      if (entry.gathering === batch) entry.gathering = undefined;
      return this.#persist(docId, entry, batch.writes);
    });
    entry.queue = batch.done.catch((error: unknown) => this.#writeFailed(docId, entry, error));
    return batch.done;
  }

  async #persist(docId: DocId, entry: Entry, writes: readonly PendingWrite[]): Promise<void> {
    const { storage } = this.#init;
    const recovering = entry.forceSnapshot;
    // After a failed write, save the whole held document: it covers the lost increment too, and
    // every change of this batch. Else the batch's last snapshot (compaction) covers the
    // increments before it, stored or in this batch.
    let from = 0;
    for (let i = 0; i < writes.length; i++) if (writes[i]!.snapshot !== undefined) from = i;
    const snapshot = recovering ? A.save(entry.doc) : writes[from]!.snapshot;
    const ops: StorageOp[] = [];
    if (snapshot !== undefined) {
      // The snapshot covers every increment up to its change; drop the stored ones in the same batch.
      ops.push({ type: 'put', key: ['doc', docId, 'snap'], value: sealRecord(snapshot) });
      for (const { key } of await storage.range(['doc', docId, 'inc'])) ops.push({ type: 'delete', key });
    }
    const increments = recovering ? [] : writes.slice(snapshot === undefined ? 0 : from + 1);
    for (const write of increments) ops.push({ type: 'put', key: ['doc', docId, 'inc', seqKey(write.seq)], value: sealRecord(write.increment) });
    for (const seal of writes.flatMap((write) => write.seals)) {
      ops.push({
        type: 'put',
        key: ['seal', docId, toBase64Url(seal.signer)],
        value: sealRecord(encodeCbor({ heads: seal.heads, signer: seal.signer, signature: seal.signature })),
      });
    }
    await storage.batch(ops, { sync: recovering || writes.some((write) => write.durable) });
    if (recovering) {
      entry.forceSnapshot = false;
      entry.snapshotBytes = snapshot!.length;
      entry.incrementCount = 0;
      entry.incrementBytes = 0;
    }
  }

  /**
   * The increment is lost, and later increments depend on it: the next write of this document
   * stores a full snapshot, and a repair is scheduled in case no other write comes.
   */
  #writeFailed(docId: DocId, entry: Entry, error: unknown): void {
    entry.forceSnapshot = true;
    this.#init.log.error('writing a document failed; it will be stored again as a full snapshot', { docId, error: String(error) });
    if (this.#repairs.has(docId) || this.#closed) return;
    const timer = this.#init.clock.setTimeout(() => {
      this.#repairs.delete(docId);
      if (!entry.forceSnapshot || this.#closed) return;
      entry.queue = entry.queue
        .then(async () => {
          if (!entry.forceSnapshot) return;
          const snapshot = A.save(entry.doc);
          const ops: StorageOp[] = [{ type: 'put', key: ['doc', docId, 'snap'], value: sealRecord(snapshot) }];
          for (const { key } of await this.#init.storage.range(['doc', docId, 'inc'])) ops.push({ type: 'delete', key });
          await this.#init.storage.batch(ops, { sync: true });
          entry.forceSnapshot = false;
          entry.snapshotBytes = snapshot.length;
          entry.incrementCount = 0;
          entry.incrementBytes = 0;
          this.#init.log.info('document stored again after a failed write', { docId });
        })
        .catch((retryError: unknown) => this.#writeFailed(docId, entry, retryError));
    }, REPAIR_DELAY_MS);
    this.#repairs.set(docId, timer);
  }

  /**
   * Forgets a document and deletes its stored bytes and seals (retention: an event bucket past its
   * age). Writes already queued for it complete first. Every node applies the same retention
   * rule, and a node takes in no document that rule has retired, so it does not come back.
   */
  async remove(docId: DocId): Promise<void> {
    const entry = this.#entries.get(docId);
    if (entry === undefined) return;
    this.#entries.delete(docId);
    this.#sortedIds = undefined;
    if (entry.interned) this.#init.interner?.release(docId, entry.digest);
    const timer = this.#repairs.get(docId);
    if (timer !== undefined) this.#init.clock.clearTimeout(timer);
    this.#repairs.delete(docId);
    try {
      await entry.queue;
      const { storage } = this.#init;
      const keys = [...(await storage.range(['doc', docId])), ...(await storage.range(['seal', docId]))].map(({ key }) => key);
      await storage.batch(keys.map((key) => ({ type: 'delete' as const, key })), { sync: false });
    } finally {
      // Gone from memory whatever the storage did: listeners (the replicator's summary) hear of it
      // even when deleting the bytes failed (a later start would load them, and retention remove them again).
      this.#version++;
      this.#emit({ docId, origin: 'local' });
    }
  }

  /**
   * Tells every listener of a change, each on its own: one that throws is logged and the others
   * still hear it (the replicator's summary follows these events and nothing else reads the
   * store again to catch up).
   */
  #emit(event: DocChanged): void {
    this.#changed.forEach((listener) => {
      try {
        listener(event);
      } catch (error) {
        this.#init.log.error('a document change listener failed', { docId: event.docId, error: String(error) });
      }
    });
  }

  /** Stops scheduled repairs; writes already queued still complete. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#repairs.values()) this.#init.clock.clearTimeout(timer);
    this.#repairs.clear();
  }

  /** Waits until every queued write is stored. */
  async flush(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((entry) => entry.queue));
  }
}
