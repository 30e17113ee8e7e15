import { NodeApi, NodeApiError, normaliseApiUrl } from './api.ts';
import { FleetConnection } from './fleet-connection.svelte.ts';
import { keyStore } from './key-store.ts';
import { KeyImportError, importOperatorKey, parseOperatorKeyFile } from './operator-key.ts';
import { type ConsoleDecision, type OperatorSigner, signDecision } from './signing.ts';
import type { DecisionResult, NodeStatus } from './types.ts';

const API_BASE_KEY = 'powernode.console.api';

/** Thrown when an operator action cannot be done; the message is for the operator. */
export class ActionError extends Error {
  override name = 'ActionError';
}

/**
 * The operator's session in this browser: the signing key (IndexedDB), which node's API the
 * console talks to (this page's own node unless switched), and the live connection to it.
 */
export class Session {
  signer = $state.raw<OperatorSigner | undefined>(undefined);
  /** False until IndexedDB has been read. */
  ready = $state.raw(false);
  apiBase = $state.raw('');
  fleet = $state.raw<FleetConnection | undefined>(undefined);
  /** Nodes revoked from this page, so their page can say so once they leave the member list. */
  revokedHere = $state.raw<Readonly<Record<string, { readonly at: number; readonly reason: string }>>>({});

  /** Reads the stored key and the chosen node, and connects when there is a key. */
  async init(): Promise<void> {
    this.apiBase = storedApiBase() ?? location.origin;
    try {
      this.signer = await keyStore.load();
    } catch {
      this.signer = undefined;
    }
    this.ready = true;
    if (this.signer !== undefined) this.#connect();
  }

  /**
   * Imports an operator key file's text: checks it, makes it a non-extractable key, asks the node
   * whether it accepts it, and only then keeps it.
   */
  async signIn(text: string): Promise<void> {
    const file = parseOperatorKeyFile(text);
    const signer = await importOperatorKey(file);
    const status = await new NodeApi(this.apiBase, signer).get<NodeStatus>('/api/v1/status');
    if (status.fleetId !== signer.fleetId) {
      throw new KeyImportError(`this key is for fleet ${signer.fleetId}, but the node at ${this.apiBase} belongs to fleet ${status.fleetId}: import that fleet's operator key, or switch to a node of this key's fleet`);
    }
    await keyStore.save(signer);
    this.signer = signer;
    this.#connect();
  }

  async signOut(): Promise<void> {
    this.fleet?.stop();
    this.fleet = undefined;
    this.signer = undefined;
    await keyStore.forget();
  }

  /** Points the console at another node's API (it stays signed in: the key is this browser's). */
  switchNode(address: string): void {
    const base = normaliseApiUrl(address);
    this.apiBase = base;
    if (base === location.origin) localStorage.removeItem(API_BASE_KEY);
    else localStorage.setItem(API_BASE_KEY, base);
    if (this.signer !== undefined) this.#connect();
  }

  /** A signed API client for the chosen node (views that read on their own: tasks, instances, catalog). */
  api(): NodeApi {
    const signer = this.signer;
    if (signer === undefined) throw new ActionError('sign in with the operator key first');
    return new NodeApi(this.apiBase, signer);
  }

  /** Signs a decision here, in the browser, and hands it to the node (POST /api/v1/decisions). */
  async decide(decision: ConsoleDecision): Promise<DecisionResult> {
    const signer = this.signer;
    if (signer === undefined) throw new ActionError('sign in with the operator key first');
    const signed = await signDecision(signer, decision);
    try {
      const result = await new NodeApi(this.apiBase, signer).post<DecisionResult>('/api/v1/decisions', signed);
      if (result.revoked !== null) this.revokedHere = { ...this.revokedHere, [result.node]: result.revoked };
      return result;
    } catch (error) {
      if (error instanceof NodeApiError) throw new ActionError(error.message);
      throw error;
    }
  }

  #connect(): void {
    this.fleet?.stop();
    const fleet = new FleetConnection({ api: new NodeApi(this.apiBase, this.signer!) });
    this.fleet = fleet;
    fleet.start();
  }
}

function storedApiBase(): string | undefined {
  try {
    return localStorage.getItem(API_BASE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export const session = new Session();
