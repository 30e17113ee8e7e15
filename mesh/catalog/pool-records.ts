import {
  type DocId,
  type HeldClaim,
  type PoolClaimRecord,
  type PoolsDocument,
  poolsDocId,
  readPoolsDoc,
  recordHeldClaim,
  recordPoolClaim,
} from '../../crdt-schema/index.ts';
import { PeerDocuments } from './peer-documents.ts';

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
export class PoolRecords extends PeerDocuments<PoolsView, PoolsDocument> {
  protected readonly kind = 'pools';

  protected docIdOf(peer: string): DocId {
    return poolsDocId(peer);
  }

  protected read(doc: unknown): PoolsView {
    return readPoolsDoc(doc);
  }

  protected empty(): PoolsView {
    return { claims: new Map() };
  }

  /**
   * Records what this node decided as owner about members, in one sealed change: in memory before
   * this returns (what this node reads shows the records at once), and stored durably (fsynced)
   * when the promise resolves.
   */
  recordClaims(records: readonly PoolClaimRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return this.changeOwn((draft) => {
      for (const record of records) recordPoolClaim(draft, record);
    });
  }

  /** Records the claim this node holds as a member, sealed; stored durably (fsynced) unless `durable` is false. */
  recordHeld(held: HeldClaim, options: { readonly durable?: boolean } = {}): Promise<void> {
    return this.changeOwn((draft) => recordHeldClaim(draft, held), options);
  }
}
