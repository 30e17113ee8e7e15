import { AUTH_HEADERS, signRequest, toBase64Url } from '../mesh/index.ts';
import { randomBytes } from 'node:crypto';
import { readOperatorKeyFile } from './key-files.ts';

/** Thrown when the node answers with an error; `status` is the HTTP status. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const REQUEST_TIMEOUT_MS = 15_000;

/** Calls a node's API with requests signed by an operator key. */
export class ApiClient {
  readonly #base: string;
  readonly #key: Awaited<ReturnType<typeof readOperatorKeyFile>>;

  private constructor(base: string, key: Awaited<ReturnType<typeof readOperatorKeyFile>>) {
    this.#base = base.replace(/\/+$/, '');
    this.#key = key;
  }

  static async create(base: string, keyFile: string): Promise<ApiClient> {
    return new ApiClient(base, await readOperatorKeyFile(keyFile));
  }

  async get<T>(path: string): Promise<T> {
    return this.#call<T>('GET', path, '');
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return this.#call<T>('POST', path, JSON.stringify(body));
  }

  /** The URL (with signature) of the live WebSocket. */
  webSocketUrl(path = '/api/v1/ws'): string {
    const signed = signRequest(this.#key.seed, this.#key.publicKey, { method: 'GET', path, timeMs: Date.now(), nonce: nonce(), body: new Uint8Array() });
    const url = new URL(path, this.#base.replace(/^http/, 'ws'));
    url.searchParams.set('key', signed.key);
    url.searchParams.set('time', signed.time);
    url.searchParams.set('nonce', signed.nonce);
    url.searchParams.set('sig', signed.signature);
    return url.toString();
  }

  async #call<T>(method: string, path: string, body: string): Promise<T> {
    const signed = signRequest(this.#key.seed, this.#key.publicKey, { method, path, timeMs: Date.now(), nonce: nonce(), body });
    let response: Response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers: {
          'content-type': 'application/json',
          [AUTH_HEADERS.key]: signed.key,
          [AUTH_HEADERS.time]: signed.time,
          [AUTH_HEADERS.nonce]: signed.nonce,
          [AUTH_HEADERS.signature]: signed.signature,
        },
        ...(method === 'GET' ? {} : { body }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw new ApiError(0, `cannot reach the node at ${this.#base}: ${(error as Error).cause ?? (error as Error).message}`);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ApiError(response.status, `the node answered with something that is not JSON (HTTP ${response.status})`);
    }
    if (!response.ok) throw new ApiError(response.status, String((json as { error?: unknown }).error ?? `HTTP ${response.status}`));
    return json as T;
  }
}

function nonce(): string {
  return toBase64Url(new Uint8Array(randomBytes(18)));
}
