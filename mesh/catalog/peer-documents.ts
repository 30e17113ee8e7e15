import { type DocId, parseDocId } from '../../crdt-schema/index.ts';
import type { DocStore, SealSigner } from '../replication/index.ts';

/**
 * Documents of one kind with one writer each (`tasks/<peer>`, `pools/<peer>`): this node writes
 * its own (durable and sealed, through {@link PeerDocuments.changeOwn}) and reads everyone's, each
 * read once per version of the document.
 */
export abstract class PeerDocuments<V, D> {
  readonly #store: DocStore;
  readonly #self: string;
  readonly #signer: SealSigner;
  readonly #cache = new Map<string, { digest: string; view: V }>();

  constructor(init: { readonly store: DocStore; readonly self: string; readonly signer: SealSigner }) {
    this.#store = init.store;
    this.#self = init.self;
    this.#signer = init.signer;
  }

  /** The document kind these are (`parseDocId(id).kind`). */
  protected abstract readonly kind: 'tasks' | 'pools';
  /** The id of `peer`'s document. */
  protected abstract docIdOf(peer: string): DocId;
  /** Reads a held document. */
  protected abstract read(doc: unknown): V;
  /** What a document not held reads as. */
  protected abstract empty(): V;

  /** Every document of this kind held, by its writer's peer id. */
  all(): Map<string, V> {
    const out = new Map<string, V>();
    for (const docId of this.#store.ids()) {
      const parsed = parseDocId(docId);
      if (parsed?.kind !== this.kind) continue;
      out.set(parsed.peerId, this.of(parsed.peerId, docId));
    }
    return out;
  }

  /** `peer`'s document (empty when not held). */
  of(peer: string, docId: DocId = this.docIdOf(peer)): V {
    const digest = this.#store.digest(docId);
    if (digest === undefined) return this.empty();
    const cached = this.#cache.get(peer);
    if (cached?.digest === digest) return cached.view;
    const view = this.read(this.#store.get(docId));
    this.#cache.set(peer, { digest, view });
    return view;
  }

  /**
   * Changes this node's own document, sealed: the change is made in memory before this returns
   * (DocStore.change), and the promise resolves once it is stored — fsynced unless `durable` is false.
   */
  protected async changeOwn(mutate: (draft: D) => void, options: { readonly durable?: boolean } = {}): Promise<void> {
    await this.#store.change<D>(this.docIdOf(this.#self), mutate, { durable: options.durable ?? true, signer: this.#signer });
  }
}
