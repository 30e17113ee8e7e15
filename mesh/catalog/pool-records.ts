import {
  type DocId,
  type HeldClaim,
  type PoolClaimRecord,
  type PoolsDocument,
  parseDocId,
  poolsDocId,
  readPoolsDoc,
  recordHeldClaim,
  recordPoolClaim,
} from '../../crdt-schema/index.ts';
import type { DocStore, SealSigner } from '../replication/index.ts';

/** One node's pools document, read. */
export interface PoolsView {
  readonly claims: ReadonlyMap<string, PoolClaimRecord>;
  readonly held?: HeldClaim;
}

/**
 * The `pools/<peer>` documents on one node: this node writes its own (claims it recorded as owner
 * of `control.pools`, the claim it holds as a member; durable and sealed), and reads everyone's,
 * once per version of each.
 */
export class PoolRecords {
  readonly #store: DocStore;
  readonly #self: string;
  readonly #signer: SealSigner;
  readonly #cache = new Map<string, { digest: string; view: PoolsView }>();

  constructor(init: { readonly store: DocStore; readonly self: string; readonly signer: SealSigner }) {
    this.#store = init.store;
    this.#self = init.self;
    this.#signer = init.signer;
  }

  /** Every pools document held, by its writer's peer id. */
  all(): Map<string, PoolsView> {
    const out = new Map<string, PoolsView>();
    for (const docId of this.#store.ids()) {
      const parsed = parseDocId(docId);
      if (parsed?.kind !== 'pools') continue;
      out.set(parsed.peerId, this.of(parsed.peerId, docId));
    }
    return out;
  }

  /** `peer`'s pools document (empty when not held). */
  of(peer: string, docId: DocId = poolsDocId(peer)): PoolsView {
    const digest = this.#store.digest(docId);
    if (digest === undefined) return { claims: new Map() };
    const cached = this.#cache.get(peer);
    if (cached?.digest === digest) return cached.view;
    const view = readPoolsDoc(this.#store.get(docId));
    this.#cache.set(peer, { digest, view });
    return view;
  }

  /** Records what this node decided as owner about members, durably (fsynced and sealed), in one change. */
  async recordClaims(records: readonly PoolClaimRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.#store.change<PoolsDocument>(poolsDocId(this.#self), (draft) => {
      for (const record of records) recordPoolClaim(draft, record);
    }, { durable: true, signer: this.#signer });
  }

  /** Records the claim this node holds as a member, durably, before it answers. */
  async recordHeld(held: HeldClaim): Promise<void> {
    await this.#store.change<PoolsDocument>(poolsDocId(this.#self), (draft) => recordHeldClaim(draft, held), { durable: true, signer: this.#signer });
  }
}
