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

  /** Records what this node decided as owner about members, durably (fsynced and sealed), in one change. */
  async recordClaims(records: readonly PoolClaimRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.changeOwn((draft) => {
      for (const record of records) recordPoolClaim(draft, record);
    });
  }

  /** Records the claim this node holds as a member, durably, before it answers. */
  async recordHeld(held: HeldClaim): Promise<void> {
    await this.changeOwn((draft) => recordHeldClaim(draft, held));
  }
}
