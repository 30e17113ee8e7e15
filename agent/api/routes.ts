import { DECISION_KINDS, DESIRED_CATALOG_DOC_ID, type EventFilter, FLEET_DOC_ID, InvalidDecisionError, InvalidLabelError, SEVERITIES, UnknownMemberError } from '../../crdt-schema/index.ts';
import { AskTimeoutError, type ControlPlane, DeadLetterError } from '../../actors/index.ts';
import { AUTH_HEADERS, AuthError, type Clock, EVENTS_LIST_MAX, type FleetNode, OperationRefusedError, type PeerId, RequestVerifier, s } from '../../mesh/index.ts';
import { catalogRoute } from './catalog-routes.ts';
import { poolRoute } from './pool-routes.ts';
import type { ApiHandlers, ApiRequest, ApiResponse, LiveSocket } from './http-server.ts';

const decisionRequest = s.object({
  kind: s.oneOf(DECISION_KINDS),
  at: s.uint(),
  body: s.string({ min: 2, max: 8_192 }),
  operator: s.string({ min: 1, max: 100 }),
  signature: s.string({ min: 1, max: 200 }),
});

export const WS_PATH = '/api/v1/ws';

const ok = (json: unknown): ApiResponse => ({ status: 200, json });
const fail = (status: number, error: string): ApiResponse => ({ status, json: { error } });

/**
 * The node's API. Every request, reads included, must be signed by a certified operator key;
 * the WebSocket upgrade carries the same signature in its query string.
 */
export function apiHandlers(getRuntime: () => Runtime | undefined, clock: Clock, options: { readonly faultInjection?: boolean } = {}): ApiHandlers {
  const verifier = new RequestVerifier();
  const getNode = (): FleetNode | undefined => getRuntime()?.node;

  const authenticate = (node: FleetNode, request: ApiRequest, signedPath: string, signature: Record<string, string | undefined>): ApiResponse | undefined => {
    const fleet = node.fleet();
    if (fleet === undefined) return fail(503, 'this node has not received the fleet document yet: try again shortly');
    try {
      verifier.verify(fleet, clock.now(), signature, { method: request.method, path: signedPath, body: request.body });
      return undefined;
    } catch (error) {
      if (error instanceof AuthError) return fail(401, error.message);
      throw error;
    }
  };

  return {
    async request(request) {
      const node = getNode();
      if (node === undefined) return fail(503, 'the node is starting: try again shortly');
      const headers = {
        key: request.headers[AUTH_HEADERS.key],
        time: request.headers[AUTH_HEADERS.time],
        nonce: request.headers[AUTH_HEADERS.nonce],
        signature: request.headers[AUTH_HEADERS.signature],
      };
      const refused = authenticate(node, request, request.url, headers);
      if (refused !== undefined) return refused;
      try {
        return await route(getRuntime()!, request, options.faultInjection === true);
      } catch (error) {
        if (error instanceof OperationRefusedError || error instanceof InvalidLabelError || error instanceof InvalidDecisionError) return fail(400, error.message);
        if (error instanceof UnknownMemberError) return fail(404, error.message);
        throw error;
      }
    },

    async upgrade(request) {
      const node = getNode();
      if (node === undefined) return fail(503, 'the node is starting: try again shortly');
      const url = new URL(request.url, 'http://node');
      if (url.pathname !== WS_PATH) return fail(404, 'no such endpoint');
      const q = url.searchParams;
      const refused = authenticate(node, request, WS_PATH, {
        key: q.get('key') ?? undefined,
        time: q.get('time') ?? undefined,
        nonce: q.get('nonce') ?? undefined,
        signature: q.get('sig') ?? undefined,
      });
      if (refused !== undefined) return refused;
      return (socket: LiveSocket) => {
        socket.send({ type: 'hello', fleetId: node.fleetId, peerId: node.peer });
        const unsubscribe = node.onEvent((event) => socket.send(event));
        const unsubscribePlacement = getRuntime()?.controlPlane.onSingletonsChanged((event) => socket.send(event));
        socket.onClose(() => {
          unsubscribe();
          unsubscribePlacement?.();
        });
      };
    },
  };
}

const eventQuery = s.object({
  kind: s.optional(s.string({ min: 1, max: 66 })),
  severity: s.optional(s.oneOf(SEVERITIES)),
  subject: s.optional(s.string({ min: 1, max: 200 })),
  since: s.optional(s.string({ min: 1, max: 16 })),
  limit: s.optional(s.string({ min: 1, max: 6 })),
});

/** `GET /api/v1/events?kind=K&severity=S&subject=X&since=MS&limit=N`, newest first. */
function listEvents(node: FleetNode, url: URL): ApiResponse {
  let query: ReturnType<typeof eventQuery.check>;
  try {
    query = eventQuery.check(Object.fromEntries(url.searchParams), 'query');
  } catch (error) {
    return fail(400, (error as Error).message);
  }
  const since = query.since === undefined ? undefined : Number(query.since);
  const limit = query.limit === undefined ? undefined : Number(query.limit);
  if (since !== undefined && !Number.isSafeInteger(since)) return fail(400, 'since is a time in milliseconds since 1970');
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1 && limit <= EVENTS_LIST_MAX)) return fail(400, `limit is a number from 1 to ${EVENTS_LIST_MAX}`);
  const filter: EventFilter = {
    ...(query.kind === undefined ? {} : { kind: query.kind }),
    ...(query.severity === undefined ? {} : { severity: query.severity }),
    ...(query.subject === undefined ? {} : { subject: query.subject }),
    ...(since === undefined ? {} : { sinceMs: since }),
    ...(limit === undefined ? {} : { limit }),
  };
  return ok({ events: node.events.list(filter) });
}

/** What the routes serve: the node's core and its control plane. */
export interface Runtime {
  readonly node: FleetNode;
  readonly controlPlane: ControlPlane;
}

const peerList = s.object({ peers: s.array(s.string({ min: 1, max: 100 }), { max: 1_000 }) });
const staleOrder = s.object({ to: s.string({ min: 1, max: 100 }), singleton: s.string({ min: 1, max: 100 }), epoch: s.uint(), owner: s.string({ min: 1, max: 100 }), kind: s.optional(s.string({ min: 1, max: 64 })) });

/**
 * Fault injection (only with POWERNODE_FAULT_INJECTION=1): isolate this node from peers at the
 * mesh level and heal, or send an order stamped as any activation (a stale owner's, say).
 */
async function faultRoute(runtime: Runtime, request: ApiRequest, key: string): Promise<ApiResponse | undefined> {
  const { node, controlPlane } = runtime;
  switch (key) {
    case 'POST /api/v1/faults/isolate': {
      const body = parseBody(request, peerList);
      if ('status' in body) return body;
      await node.isolate(body.peers);
      return ok({ isolated: node.isolated() });
    }
    case 'POST /api/v1/faults/heal': {
      const body = parseBody(request, peerList);
      if ('status' in body) return body;
      node.heal(body.peers.length === 0 ? undefined : body.peers);
      return ok({ isolated: node.isolated() });
    }
    case 'POST /api/v1/faults/order': {
      const body = parseBody(request, staleOrder);
      if ('status' in body) return body;
      try {
        return ok(await controlPlane.order(body.to as PeerId, body.singleton, { epoch: body.epoch, owner: body.owner }, body.kind ?? 'noop'));
      } catch (error) {
        // Not delivered (dead node, broken stream) or not answered: the order is a dead letter.
        if (error instanceof DeadLetterError || error instanceof AskTimeoutError) return fail(503, `${error.name}: ${error.message}`);
        throw error;
      }
    }
    default:
      return undefined;
  }
}

async function route(runtime: Runtime, request: ApiRequest, faultInjection: boolean): Promise<ApiResponse> {
  const { node, controlPlane } = runtime;
  const url = new URL(request.url, 'http://node');
  const path = url.pathname;
  const key = `${request.method} ${path}`;
  if (path.startsWith('/api/v1/faults/')) {
    if (!faultInjection) return fail(404, 'fault injection is off on this node (start it with POWERNODE_FAULT_INJECTION=1)');
    return (await faultRoute(runtime, request, key)) ?? fail(404, `no such endpoint: ${key}`);
  }
  if (path === '/api/v1/catalog' || path.startsWith('/api/v1/catalog/') || path === '/api/v1/tasks' || path === '/api/v1/instances') {
    return (await catalogRoute(node, request, url, (shape) => parseBody(request, shape))) ?? fail(404, `no such endpoint: ${key}`);
  }
  if (path === '/api/v1/pools' || path.startsWith('/api/v1/pools/')) return (await poolRoute(runtime, request, url, (shape) => parseBody(request, shape))) ?? fail(404, `no such endpoint: ${key}`);
  switch (key) {
    case 'GET /api/v1/status':
      return ok({ ...node.status(), ...controlPlane.status(), process: processFacts() });
    case 'GET /api/v1/events':
      return listEvents(node, url);
    case 'POST /api/v1/revocation-cut': {
      // Where the fleet document and the catalog stand here, each joined to one head first (so a
      // member's merged empty changes cannot make the cut too long to sign): what an operator
      // revocation going through this node cuts the revoked operator's writes at. The catalog's
      // is null when this node does not hold it (a revocation then cuts it by time alone).
      const fleet = await node.store.joinHeads(FLEET_DOC_ID);
      const catalog = await node.store.joinHeads(DESIRED_CATALOG_DOC_ID);
      return ok({ fleet: fleet === undefined ? null : [...fleet].sort(), catalog: catalog === undefined ? null : [...catalog].sort() });
    }
    case 'POST /api/v1/decisions': {
      const decision = parseBody(request, decisionRequest);
      if ('status' in decision) return decision;
      await node.decide(decision);
      const { node: peer, publicKey } = JSON.parse(decision.body) as { node?: string; publicKey?: string };
      const fleet = node.fleet();
      if (peer === undefined) return ok({ decision: decision.signature, operator: fleet?.operators.find((o) => o.publicKey === publicKey) ?? null });
      return ok({ decision: decision.signature, node: peer, labels: fleet?.labels[peer] ?? {}, revoked: fleet?.revoked[peer] ?? null });
    }
    default:
      return fail(404, `no such endpoint: ${key}`);
  }
}

function parseBody<T>(request: ApiRequest, shape: s.Shape<T>): T | ApiResponse {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(request.body));
  } catch {
    return fail(400, 'the request body is not JSON');
  }
  try {
    return shape.check(value);
  } catch (error) {
    return fail(400, (error as Error).message);
  }
}

/** Memory and uptime of this process, for operators watching a node's footprint. */
function processFacts(): Record<string, number> {
  const memory = process.memoryUsage();
  return {
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime()),
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    arrayBuffersBytes: memory.arrayBuffers,
  };
}
