import type { OperatorSigner } from './signing.ts';

const DB_NAME = 'powernode-console';
const STORE = 'keys';
const SLOT = 'operator';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB is not available'));
  });
}

async function run<T>(mode: IDBTransactionMode, action: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = action(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error ?? new Error('IndexedDB transaction failed'));
      transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

/**
 * Keeps the operator's signer in this browser's IndexedDB for this console's origin. The
 * CryptoKey is stored as a key object, non-extractable: the browser keeps it usable for signing
 * after a reload, but no script can read the private key out of it.
 */
export const keyStore = {
  async load(): Promise<OperatorSigner | undefined> {
    const value = (await run('readonly', (store) => store.get(SLOT))) as OperatorSigner | undefined;
    if (value === undefined || !(value.privateKey instanceof CryptoKey)) return undefined;
    return value;
  },
  async save(signer: OperatorSigner): Promise<void> {
    await run('readwrite', (store) => store.put({ ...signer }, SLOT));
  },
  async forget(): Promise<void> {
    await run('readwrite', (store) => store.delete(SLOT));
  },
};
