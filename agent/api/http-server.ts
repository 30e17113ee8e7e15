import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { AUTH_HEADERS } from '../../mesh/index.ts';
import { ConsoleFiles, findConsoleDir } from './console-files.ts';

/** A request as the API routes see it, whatever server runs underneath. */
export interface ApiRequest {
  readonly method: string;
  /** Path with query string. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Uint8Array;
}

export interface ApiResponse {
  readonly status: number;
  readonly json: unknown;
}

/** One live WebSocket, as the routes see it. */
export interface LiveSocket {
  send(message: unknown): void;
  close(code?: number, reason?: string): void;
  onClose(listener: () => void): void;
}

export interface ApiHandlers {
  request(request: ApiRequest): Promise<ApiResponse>;
  /** Accepts (returns undefined, then owns the socket) or refuses with a response. */
  upgrade(request: ApiRequest): Promise<ApiResponse | ((socket: LiveSocket) => void)>;
}

/** The server seam: node:http + ws today; another server (uWebSockets) can implement it. */
export interface ApiServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Where the API lives; every other path is the console's. */
export const API_PREFIX = '/api/';

export interface HttpApiOptions {
  /** The built console to serve at `/`; found beside the sources when not given (console/build). */
  readonly consoleDir?: string | undefined;
}

export const MAX_BODY_BYTES = 1024 * 1024;
/** Request bodies of the catalog's writes may be this large (a whole fleet.yaml's changes). */
export const CATALOG_BODY_BYTES_MAX = 4 * 1024 * 1024;
const MAX_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** Thrown when the API address cannot be bound. */
export class ApiListenError extends Error {
  override name = 'ApiListenError';
}

/**
 * Serves the API under /api/ (every request signed, see routes.ts) and the console's static files
 * everywhere else, on one address.
 */
export async function startHttpApi(host: string, port: number, handlers: ApiHandlers, options: HttpApiOptions = {}): Promise<ApiServer> {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const files = new ConsoleFiles('consoleDir' in options ? options.consoleDir : findConsoleDir());
  const server = createServer((req, res) => {
    if (!(req.url ?? '/').startsWith(API_PREFIX)) {
      files.serve(req, res).catch(() => res.destroy());
      return;
    }
    void serve(req, res, handlers);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.on('upgrade', (req, socket, head) => {
    void (async () => {
      const request = toApiRequest(req, new Uint8Array());
      let outcome: Awaited<ReturnType<ApiHandlers['upgrade']>>;
      try {
        outcome = await handlers.upgrade(request);
      } catch {
        outcome = { status: 500, json: { error: 'internal error' } };
      }
      if (typeof outcome !== 'function') {
        const body = JSON.stringify(outcome.json);
        socket.end(`HTTP/1.1 ${outcome.status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      const accept = outcome;
      wss.handleUpgrade(req, socket, head, (ws) => accept(liveSocket(ws)));
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new ApiListenError(error.code === 'EADDRINUSE' ? `${host}:${port} is already in use: pick another --api address` : `cannot listen on ${host}:${port}: ${error.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function liveSocket(ws: WebSocket): LiveSocket {
  return {
    send(message) {
      if (ws.readyState !== ws.OPEN) return;
      // A client that does not read is dropped rather than buffered without bound.
      if (ws.bufferedAmount > MAX_SOCKET_BUFFER_BYTES) {
        ws.close(1013, 'too slow');
        return;
      }
      ws.send(JSON.stringify(message));
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    onClose(listener) {
      ws.on('close', listener);
    },
  };
}

/**
 * Cross-origin reads are allowed: a console served by one node may call another node's API.
 * This opens nothing, since no request carries ambient credentials (cookies): each one must bear
 * an operator's signature, which only a holder of the key can make.
 */
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST',
  'access-control-allow-headers': `content-type, ${Object.values(AUTH_HEADERS).join(', ')}`,
  'access-control-max-age': '600',
} as const;

async function serve(req: IncomingMessage, res: ServerResponse, handlers: ApiHandlers): Promise<void> {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS_HEADERS);
    res.end();
    return;
  }
  let response: ApiResponse;
  try {
    const limit = bodyLimitFor(req.method, req.url);
    const body = await readBody(req, limit);
    response = body === undefined ? { status: 413, json: { error: `request body over ${limit} bytes` } } : await handlers.request(toApiRequest(req, body));
  } catch {
    response = { status: 500, json: { error: 'internal error' } };
  }
  const text = JSON.stringify(response.json);
  res.writeHead(response.status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'access-control-allow-origin': CORS_HEADERS['access-control-allow-origin'] });
  res.end(text);
}

/** The catalog's writes carry whole fleet.yaml applies; every other request keeps {@link MAX_BODY_BYTES}. */
function bodyLimitFor(method: string | undefined, url: string | undefined): number {
  return method === 'POST' && (url ?? '').split('?')[0] === '/api/v1/catalog' ? CATALOG_BODY_BYTES_MAX : MAX_BODY_BYTES;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function toApiRequest(req: IncomingMessage, body: Uint8Array): ApiRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) headers[name] = Array.isArray(value) ? value[0] : value;
  return { method: req.method ?? 'GET', url: req.url ?? '/', headers, body };
}
