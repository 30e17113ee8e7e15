import { createReadStream, existsSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, sep } from 'node:path';

/** Content types of the files a console build holds; anything else is served as bytes. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Files under this folder carry a content hash in their name: cached for good. */
const IMMUTABLE_PREFIX = '/_app/immutable/';
const MAX_PATH_CHARS = 1_024;
const SEARCH_LEVELS_MAX = 4;

/** The built console (console/build), searched from here up: it is not in .build/. */
export function findConsoleDir(from = import.meta.dirname): string | undefined {
  let dir = from;
  for (let level = 0; level <= SEARCH_LEVELS_MAX; level++) {
    const candidate = join(dir, 'console', 'build');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/**
 * Serves the console's files from `dir`: only regular files under it (no path traversal, no
 * symbolic link out of it), streamed from disk so nothing is held in memory, the precompressed
 * copy when the browser takes it, and index.html for any path without a file extension (the
 * console's own routes, such as /node/PEERID).
 */
export class ConsoleFiles {
  readonly #dir: string | undefined;
  #realDir: Promise<string> | undefined;

  constructor(dir: string | undefined) {
    this.#dir = dir;
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'only GET and HEAD are served here', { allow: 'GET, HEAD' });
    if (this.#dir === undefined) return plain(res, 404, 'the console is not built on this node: run "npm ci" (or "npm run build:console") in the powernode folder');
    const pathname = decodedPath(req.url ?? '/');
    if (pathname === undefined) return plain(res, 400, 'bad path');
    const file = (await this.#resolve(pathname)) ?? (extname(pathname) === '' ? await this.#resolve('/index.html') : undefined);
    if (file === undefined) return plain(res, 404, 'not found');
    const encoding = await precompressed(file.path, String(req.headers['accept-encoding'] ?? ''));
    const headers: Record<string, string | number> = {
      'content-type': CONTENT_TYPES[extname(file.path)] ?? 'application/octet-stream',
      'content-length': encoding?.size ?? file.size,
      'cache-control': pathname.startsWith(IMMUTABLE_PREFIX) ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      // The console's buttons sign operator decisions: no other site may frame it.
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      vary: 'accept-encoding',
    };
    if (encoding !== undefined) headers['content-encoding'] = encoding.name;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(encoding?.path ?? file.path);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  /** The regular file at `pathname` inside the console folder, or undefined. */
  async #resolve(pathname: string): Promise<{ path: string; size: number } | undefined> {
    if (this.#dir === undefined) return undefined;
    this.#realDir ??= realpath(this.#dir);
    const root = await this.#realDir;
    try {
      const path = await realpath(join(root, pathname));
      if (!path.startsWith(root + sep)) return undefined;
      const info = await stat(path);
      return info.isFile() ? { path, size: info.size } : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The URL's path, percent-decoded; undefined when it cannot be a file path. */
function decodedPath(url: string): string | undefined {
  if (url.length > MAX_PATH_CHARS) return undefined;
  const raw = url.split('?')[0]!.split('#')[0]!;
  let pathname: string;
  try {
    pathname = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (!pathname.startsWith('/') || pathname.includes('\0') || pathname.includes('\\')) return undefined;
  // A path that climbs out is refused before it reaches the file system.
  if (pathname.split('/').some((part) => part === '..')) return undefined;
  return pathname;
}

/** The brotli or gzip copy the build made beside `path`, when the browser accepts it. */
async function precompressed(path: string, acceptEncoding: string): Promise<{ name: string; path: string; size: number } | undefined> {
  for (const [name, suffix] of [['br', '.br'], ['gzip', '.gz']] as const) {
    if (!new RegExp(`\\b${name}\\b`).test(acceptEncoding)) continue;
    try {
      const info = await stat(path + suffix);
      if (info.isFile()) return { name, path: path + suffix, size: info.size };
    } catch {
      // No precompressed copy of this file.
    }
  }
  return undefined;
}

function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
  res.end(`${text}\n`);
}
