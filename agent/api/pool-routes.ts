import { randomBytes } from 'node:crypto';
import { POOLS_SINGLETON, type PoolAnswer, PoolUnavailableError, askPools, poolsView } from '../../actors/index.ts';
import { s } from '../../mesh/index.ts';
import { SystemClock } from '../adapters/system-clock.ts';
import type { ApiRequest, ApiResponse } from './http-server.ts';
import type { Runtime } from './routes.ts';

const acquireRequest = s.object({ pool: s.string({ min: 1, max: 64 }), for: s.optional(s.string({ max: 200 })), requestId: s.optional(s.string({ min: 8, max: 100 })) });
const releaseRequest = s.object({ pool: s.string({ min: 1, max: 64 }), member: s.string({ min: 1, max: 128 }), reuse: s.optional(s.boolean()) });

const ok = (json: unknown): ApiResponse => ({ status: 200, json });
const fail = (status: number, error: string, extra: Record<string, unknown> = {}): ApiResponse => ({ status, json: { error, ...extra } });
const clock = new SystemClock();

/**
 * `GET /api/v1/pools`: every pool with its members' states, as this node sees them.
 * `POST /api/v1/pools/acquire` `{pool, for?, requestId?}`: a claim, made by the owner of
 * `control.pools` and answered once it is on record (409 when refused, 503 when no owner answered).
 * `POST /api/v1/pools/release` `{pool, member, reuse?}` (a peer id or member name): the member drains (or, with reuse, is ready again).
 * Undefined for other paths.
 */
export async function poolRoute(runtime: Runtime, request: ApiRequest, url: URL, parse: <T>(shape: s.Shape<T>) => T | ApiResponse): Promise<ApiResponse | undefined> {
  const { node, controlPlane } = runtime;
  switch (`${request.method} ${url.pathname}`) {
    case 'GET /api/v1/pools': {
      const view = poolsView(node, controlPlane, clock);
      return ok({ pools: view.pools.map((pool) => ({ ...pool, members: view.members.filter((m) => m.pool === pool.name) })), owner: controlPlane.placement.view().find((v) => v.name === POOLS_SINGLETON) ?? null });
    }
    case 'POST /api/v1/pools/acquire': {
      const body = parse(acquireRequest);
      if ('status' in body) return body;
      const requestId = body.requestId ?? `c-${randomBytes(8).toString('hex')}`;
      return answer(() => askPools(controlPlane, clock, node.peer, { type: 'acquire', pool: body.pool, requestId, via: node.peer, ...(body.for === undefined ? {} : { for: body.for }) }));
    }
    case 'POST /api/v1/pools/release': {
      const body = parse(releaseRequest);
      if ('status' in body) return body;
      const members = node.members();
      const named = members.filter((m) => m.peerId === body.member || m.name === body.member || m.hostname === body.member);
      if (named.length !== 1) return fail(named.length === 0 ? 404 : 400, named.length === 0 ? `no member ${JSON.stringify(body.member)} in the fleet: give a member's peer id or name` : `${body.member} names ${named.length} members: give its peer id`);
      return answer(() => askPools(controlPlane, clock, node.peer, { type: 'release', pool: body.pool, member: named[0]!.peerId, requestId: `r-${randomBytes(8).toString('hex')}`, via: node.peer, ...(body.reuse === true ? { reuse: true } : {}) }));
    }
    default:
      return undefined;
  }
}

async function answer(ask: () => Promise<Exclude<PoolAnswer, { type: 'busy' }>>): Promise<ApiResponse> {
  try {
    const result = await ask();
    if (result.type === 'refused') return fail(result.reason === 'unavailable' ? 503 : result.reason === 'no-such-pool' ? 404 : 409, result.message, { reason: result.reason });
    return ok(result);
  } catch (error) {
    if (error instanceof PoolUnavailableError) return fail(503, error.message, { reason: 'unavailable' });
    throw error;
  }
}
