import { instanceRecords, taskView } from '../../actors/index.ts';
import { CatalogInputError, DESIRED_BODY_CHARS_MAX, DESIRED_TASKS_DOC_ID, type DesiredCatalog, previewTemplate } from '../../crdt-schema/index.ts';
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

/**
 * `GET /api/v1/catalog`: the desired catalog as this node holds it.
 * `POST /api/v1/catalog` `{entries: [...]}`: records operator-signed entries, all or none.
 * `GET /api/v1/catalog/preview?template=NAME`: the template's composition preview.
 * `GET /api/v1/instances`: each member instance's lifecycle state and latest transitions.
 * `GET /api/v1/tasks`: every task with its state; `POST /api/v1/tasks` `{entries}`: task requests and cancellations.
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
      return ok({ tasks: taskView(node) });
    case 'POST /api/v1/tasks': {
      const body = parse(recordRequest);
      if ('status' in body) return body;
      await node.desired.record(body.entries, DESIRED_TASKS_DOC_ID);
      return ok({ tasks: taskView(node) });
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
