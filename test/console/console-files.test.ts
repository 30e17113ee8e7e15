import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startHttpApi } from '../../agent/api/http-server.ts';
import { tempDir } from '../helpers/temp-dir.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A raw request: fetch would normalise `..` out of the path before sending it. */
function get(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the API server serves the built console', () => {
  let root: { path: string; remove: () => Promise<void> };
  let server: ApiServer;
  let bare: ApiServer;
  const apiCalls: string[] = [];

  beforeAll(async () => {
    root = await tempDir('powernode-console-files-');
    const site = join(root.path, 'build');
    await mkdir(join(site, '_app', 'immutable'), { recursive: true });
    await writeFile(join(site, 'index.html'), '<!doctype html><title>console</title>');
    await writeFile(join(site, '_app', 'immutable', 'start.js'), 'export const x = 1;');
    await writeFile(join(site, '_app', 'immutable', 'start.js.gz'), gzipSync('export const x = 1;'));
    await writeFile(join(root.path, 'secret.key'), 'do not serve');
    await symlink(join(root.path, 'secret.key'), join(site, 'linked.txt'));
    const handlers = {
      request: async (req: { url: string }) => {
        apiCalls.push(req.url);
        return { status: 401, json: { error: 'signed requests only' } };
      },
      upgrade: async () => ({ status: 404, json: { error: 'no' } }),
    };
    server = await startHttpApi('127.0.0.1', 0, handlers, { consoleDir: site });
    bare = await startHttpApi('127.0.0.1', 0, handlers, { consoleDir: undefined });
  });

  afterAll(async () => {
    await server?.close();
    await bare?.close();
    await root?.remove();
  });

  it('answers / and client routes with index.html', async () => {
    for (const path of ['/', '/node/12D3KooWabc', '/events?kind=x']) {
      const answer = await get(server.url, path);
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(answer.headers['cache-control']).toBe('no-cache');
      expect(answer.headers['x-frame-options']).toBe('DENY');
      expect(answer.body.toString()).toContain('<title>console</title>');
    }
  });

  it('serves hashed assets with their content type, cached for good, gzipped when asked', async () => {
    const plain = await get(server.url, '/_app/immutable/start.js');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toContain('immutable');
    expect(plain.body.toString()).toBe('export const x = 1;');
    const zipped = await get(server.url, '/_app/immutable/start.js', { headers: { 'accept-encoding': 'gzip, deflate' } });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(Number(zipped.headers['content-length'])).toBe(zipped.body.length);
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await get(server.url, '/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect((await get(server.url, '/', { method: 'POST' })).status).toBe(405);
  });

  it('never serves a file outside the console folder', async () => {
    for (const path of ['/../secret.key', '/%2e%2e/secret.key', '/_app/..%2f..%2fsecret.key', '/..%5csecret.key', '/linked.txt', '/%00', '/%E0%A4%A']) {
      const answer = await get(server.url, path);
      expect(answer.status, path).toBeGreaterThanOrEqual(400);
      expect(answer.body.toString(), path).not.toContain('do not serve');
    }
    expect((await get(server.url, '/missing.js')).status).toBe(404);
  });

  it('keeps /api/ for the signed API, with cross-origin preflight answered', async () => {
    const answer = await get(server.url, '/api/v1/status');
    expect(answer.status).toBe(401);
    expect(answer.headers['access-control-allow-origin']).toBe('*');
    expect(apiCalls).toContain('/api/v1/status');
    const preflight = await get(server.url, '/api/v1/decisions', { method: 'OPTIONS' });
    expect(preflight.status).toBe(204);
    expect(String(preflight.headers['access-control-allow-headers'])).toContain('x-powernode-signature');
  });

  it('says how to build the console when a node has none', async () => {
    const answer = await get(bare.url, '/');
    expect(answer.status).toBe(404);
    expect(answer.body.toString()).toContain('npm run build:console');
  });
});
