import { AUTH_HEADERS, type OperatorSigner, signRequest } from './signing.ts';

/** Thrown when a call to a node fails; `message` is written for an operator, `status` is HTTP's (0: unreachable). */
export class NodeApiError extends Error {
  override name = 'NodeApiError';
  readonly status: number;
  /** What the node itself said, when it said something. */
  readonly detail: string;

  constructor(status: number, message: string, detail = '') {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

const REQUEST_TIMEOUT_MS = 15_000;
export const WS_PATH = '/api/v1/ws';

/** Normalises what an operator typed as a node's address: `127.0.0.1:7421` → `http://127.0.0.1:7421`. */
export function normaliseApiUrl(text: string): string {
  const trimmed = text.trim().replace(/\/+$/, '');
  const withScheme = /^https?:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new NodeApiError(0, `"${text}" is not a node address: write it as http://HOST:PORT, e.g. http://127.0.0.1:7420`);
  }
  if (url.pathname !== '/' || url.search !== '' || url.username !== '') throw new NodeApiError(0, `a node address has no path: write it as http://HOST:PORT, not "${text}"`);
  return url.origin;
}

/** Words for an operator about a refusal, from the node's own message and the HTTP status. */
export function explain(status: number, detail: string, base: string): string {
  if (status === 0) return `Cannot reach the node at ${base}. Is it running, and is the address right?`;
  if (status === 401) {
    if (/revoked/.test(detail)) return 'Your operator key was revoked by the fleet root key: ask the fleet owner for a new one ("powernode operator add").';
    if (/not a certified operator/.test(detail)) return `The node at ${base} does not know this key: it belongs to another fleet, or is not an operator of this one. Import this fleet's operator key.`;
    if (/clock/.test(detail)) return `The node refused the request because this computer's clock and the node's differ by more than a minute: set both clocks right.`;
    return `The node refused the signed request: ${detail}.`;
  }
  if (status === 503) return `The node at ${base} is not ready: ${detail}.`;
  if (status === 404) return detail.startsWith('no such endpoint') ? `The node at ${base} does not offer this yet (${detail}): it may run an older powernode.` : `${capitalise(detail)}.`;
  if (status === 400) return `The node refused it: ${detail}.`;
  return `The node answered with an error (HTTP ${status}): ${detail || 'no details'}.`;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A node's operator API, every request signed in the browser with the operator's key. */
export class NodeApi {
  readonly base: string;
  readonly #signer: OperatorSigner;

  constructor(base: string, signer: OperatorSigner) {
    this.base = base.replace(/\/+$/, '');
    this.#signer = signer;
  }

  get<T>(path: string, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.#call<T>('GET', path, '', options.signal);
  }

  post<T>(path: string, body: unknown, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.#call<T>('POST', path, JSON.stringify(body), options.signal);
  }

  /** The live WebSocket's URL, signed in its query string (the node checks it at the upgrade). */
  async webSocketUrl(): Promise<string> {
    const signed = await signRequest(this.#signer, 'GET', WS_PATH, '');
    const url = new URL(WS_PATH, this.base.replace(/^http/, 'ws'));
    url.searchParams.set('key', signed.key);
    url.searchParams.set('time', signed.time);
    url.searchParams.set('nonce', signed.nonce);
    url.searchParams.set('sig', signed.signature);
    return url.toString();
  }

  async #call<T>(method: string, path: string, body: string, signal: AbortSignal | undefined): Promise<T> {
    const url = new URL(path, this.base);
    // Sign the path exactly as the browser will send it (its URL parser may re-encode).
    const sent = `${url.pathname}${url.search}`;
    const signed = await signRequest(this.#signer, method, sent, body);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          ...(method === 'GET' ? {} : { 'content-type': 'application/json' }),
          [AUTH_HEADERS.key]: signed.key,
          [AUTH_HEADERS.time]: signed.time,
          [AUTH_HEADERS.nonce]: signed.nonce,
          [AUTH_HEADERS.signature]: signed.signature,
        },
        ...(method === 'GET' ? {} : { body }),
        cache: 'no-store',
        signal: signal === undefined ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
    } catch (error) {
      if ((error as Error).name === 'AbortError' && signal?.aborted === true) throw error;
      throw new NodeApiError(0, explain(0, '', this.base), (error as Error).message);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new NodeApiError(response.status, `The node at ${this.base} answered with something that is not the powernode API (HTTP ${response.status}): is that address a powernode node?`);
    }
    if (!response.ok) {
      const detail = String((json as { error?: unknown } | null)?.error ?? '');
      throw new NodeApiError(response.status, explain(response.status, detail, this.base), detail);
    }
    return json as T;
  }
}
