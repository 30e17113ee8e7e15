import { instanceRecords, taskView } from '../../actors/index.ts';
import { CatalogInputError, DESIRED_BODY_CHARS_MAX, DESIRED_TASKS_DOC_ID, type DesiredCatalog, TASK_STATES, previewTemplate, promotionThresholdsOf, versionKey } from '../../crdt-schema/index.ts';
import { type DesiredCatalogView, ENTRIES_PER_REQUEST_MAX, type FleetNode, s } from '../../mesh/index.ts';
import type { ApiRequest, ApiResponse } from './http-server.ts';

const entryShape = s.object({
  at: s.uint(),
  body: s.string({ min: 2, max: DESIRED_BODY_CHARS_MAX }),
  operator: s.object({
    publicKey: s.string({ min: 1, max: 100 }),
    name: s.string({ min: 1, max: 200 }),
    addedAt: s.uint(),
    certificate: s.string({ min: 1, max: 200 }),
  }),
  signature: s.string({ min: 1, max: 200 }),
});
const recordRequest = s.object({ entries: s.array(entryShape, { min: 1, max: ENTRIES_PER_REQUEST_MAX }) });

const ok = (json: unknown): ApiResponse => ({ status: 200, json });
const fail = (status: number, error: string): ApiResponse => ({ status, json: { error } });

/** What the catalog endpoints answer: the folded catalog and how it was folded. */
export function catalogAnswer(view: DesiredCatalogView): { catalog: DesiredCatalog; entries: number; skipped: DesiredCatalogView['skipped'] } {
  return { catalog: view.catalog, entries: view.entries, skipped: view.skipped };
}

const TASK_LIST_LIMIT_MAX = 10_000;

/**
 * `GET /api/v1/tasks[?id=ID][&node=PEER][&state=STATE][&limit=N]`: the tasks that match, oldest
 * first; with `limit`, the newest N of them. `total` counts every match (a list cut by `limit`
 * says so). A parameter this does not know, or a state that does not exist, is a 400 naming why.
 */
function taskList(node: FleetNode, params: URLSearchParams): ApiResponse {
  for (const name of params.keys()) if (!['id', 'node', 'state', 'limit'].includes(name)) return fail(400, `unknown parameter ${JSON.stringify(name)}: use id, node, state, limit`);
  const state = params.get('state');
  if (state !== null && !(TASK_STATES as readonly string[]).includes(state)) return fail(400, `state must be one of ${TASK_STATES.join(', ')}`);
  const limitText = params.get('limit');
  const limit = limitText === null ? undefined : Number(limitText);
  if (limit !== undefined && (!/^[0-9]+$/.test(limitText!) || limit < 1 || limit > TASK_LIST_LIMIT_MAX)) return fail(400, `limit must be a whole number from 1 to ${TASK_LIST_LIMIT_MAX}`);
  const id = params.get('id');
  const peer = params.get('node');
  const matching = taskView(node).filter((t) => (id === null || t.id === id) && (peer === null || t.node === peer) && (state === null || t.state === state));
  return ok({ tasks: limit === undefined ? matching : matching.slice(-limit), total: matching.length });
}

/**
 * `GET /api/v1/catalog`: the desired catalog as this node holds it.
 * `POST /api/v1/catalog` `{entries: [...]}`: records operator-signed entries, all or none.
 * `GET /api/v1/catalog/preview?template=NAME`: the template's composition preview.
 * `GET /api/v1/catalog/promotion?version=NAME@N`: the fleet's evidence for blessing a version (docs/CATALOG.md §Promotion evidence).
 * `GET /api/v1/instances`: each member instance's lifecycle state and latest transitions.
 * `GET /api/v1/tasks` (see `taskList`); `POST /api/v1/tasks` `{entries}`: task requests and cancellations, all or none.
 * Undefined for other paths.
 */
export async function catalogRoute(node: FleetNode, request: ApiRequest, url: URL, parse: <T>(shape: s.Shape<T>) => T | ApiResponse): Promise<ApiResponse | undefined> {
  switch (`${request.method} ${url.pathname}`) {
    case 'GET /api/v1/catalog':
      return ok(catalogAnswer(node.desired.catalog()));
    case 'POST /api/v1/catalog': {
      const body = parse(recordRequest);
      if ('status' in body) return body;
      await node.desired.record(body.entries);
      return ok(catalogAnswer(node.desired.catalog()));
    }
    case 'GET /api/v1/instances': {
      const records = instanceRecords(node);
      const members = node.members();
      const peers = new Set([...members.map((m) => m.peerId), ...records.keys()]);
      const instances = [...peers].sort().map((peer) => {
        const member = members.find((m) => m.peerId === peer);
        const record = records.get(peer);
        return { peerId: peer, name: member?.name ?? null, observed: member?.state ?? 'gone', state: record?.state ?? 'pending', since: record?.since ?? null, epoch: record?.epoch ?? null, transitions: record?.transitions ?? [] };
      });
      return ok({ instances });
    }
    case 'GET /api/v1/tasks':
      return taskList(node, url.searchParams);
    case 'POST /api/v1/tasks': {
      const body = parse(recordRequest);
      if ('status' in body) return body;
      await node.desired.record(body.entries, DESIRED_TASKS_DOC_ID);
      return ok({ recorded: body.entries.length });
    }
    case 'GET /api/v1/catalog/promotion': {
      const key = url.searchParams.get('version');
      if (key === null || key.length === 0) return fail(400, 'name the version: ?version=NAME@NUMBER');
      const { catalog } = node.desired.catalog();
      const version = catalog.versions.find((v) => versionKey(v) === key);
      if (version === undefined) return fail(404, `no version ${JSON.stringify(key)} in the catalog`);
      const thresholds = promotionThresholdsOf(catalog.trust.find((policy) => policy.module === version.module));
      const { observations, verdict } = node.promotionEvidence(version, thresholds);
      return ok({ version: key, state: version.state, thresholds, verdict, observations });
    }
    case 'GET /api/v1/catalog/preview': {
      const name = url.searchParams.get('template');
      if (name === null || name.length === 0) return fail(400, 'name the template: ?template=NAME');
      const { catalog } = node.desired.catalog();
      const template = catalog.templates.find((t) => t.name === name);
      if (template === undefined) return fail(404, `no template named ${JSON.stringify(name)} in the catalog`);
      try {
        return ok(previewTemplate(template, catalog.modules));
      } catch (error) {
        if (error instanceof CatalogInputError) return fail(400, error.message);
        throw error;
      }
    }
    default:
      return undefined;
  }
}
