import * as A from '@automerge/automerge';
import { describe, expect, it } from 'vitest';
import {
  DESIRED_CATALOG_DOC_ID,
  DESIRED_TASKS_DOC_ID,
  type DesiredChange,
  type DesiredDocument,
  type DesiredEntry,
  type FleetId,
  type FleetView,
  InvalidDesiredEntryError,
  desiredBody,
  foldDesired,
  isTaskBucketAcceptable,
  isTaskBucketRetired,
  parseDesiredBody,
  parseDocId,
  readDesiredEntries,
  recordDesiredEntry,
  toHex,
  toPlain,
  moduleVersionOf,
  versionStatement,
  writerOfDoc,
} from '../../crdt-schema/index.ts';
import {
  DecisionVerifier,
  OperationRefusedError,
  SeededRandom,
  type SigningOperator,
  certifyOperator,
  desiredChangeProblem,
  desiredEntryProblem,
  generateKeyPair,
  catalogProblem,
  signBytes,
  signDecision,
  signDesiredEntry,
  toBase64Url,
} from '../../mesh/index.ts';
import { module, template } from '../catalog/fixtures.ts';
import { Fleet } from '../helpers/memory-fleet.ts';

const random = new SeededRandom(7);
const fleetId = toHex(new SeededRandom(1).bytes(16)) as FleetId;
const root = generateKeyPair(random);

function operatorOf(name: string, rootSeed = root.seed): SigningOperator {
  const keys = generateKeyPair(random);
  return { ...certifyOperator(rootSeed, fleetId, { publicKey: toBase64Url(keys.publicKey), name, addedAt: 0 }), seed: keys.seed };
}

const ops = operatorOf('ops');
const fleet: FleetView = {
  schema: 1,
  fleetId,
  name: 'test',
  createdAt: 0,
  rootKey: toBase64Url(root.publicKey),
  operators: [{ publicKey: ops.publicKey, name: ops.name, addedAt: ops.addedAt, certificate: ops.certificate }],
  founder: { peerId: 'x', name: 'x' } as FleetView['founder'],
  labels: {},
  revoked: {},
  decisionCount: 0,
};

const put = (kind: DesiredChange['kind'], value: unknown): DesiredChange => ({ op: 'put', kind, value }) as DesiredChange;
const entry = (changes: readonly DesiredChange[], at: number, by = ops, docId: string = DESIRED_CATALOG_DOC_ID): DesiredEntry => signDesiredEntry(by, fleetId, docId, changes, at);
const digest = `sha256:${'a'.repeat(64)}`;

describe('desired catalog entries', () => {
  it('names the document and gives it no single writer', () => {
    expect(parseDocId('desired/catalog')).toEqual({ kind: 'desired', area: 'catalog' });
    expect(parseDocId('desired/other')).toBeUndefined();
    expect(writerOfDoc('desired/catalog')).toBeUndefined();
  });

  it('has one canonical body per batch, whatever the field order, and the checkers\' output is its own input', () => {
    const web = module('web', { requires: ['base'], fileSpec: ['/etc/nginx/**'] });
    const reordered = Object.fromEntries(Object.entries(web).reverse());
    const body = desiredBody([put('module', web)]);
    expect(desiredBody([put('module', reordered)])).toBe(body);
    expect(parseDesiredBody(body)).toHaveLength(1);
    const values: DesiredChange[] = [
      put('template', template('edge', ['web', { module: 'base', priority: 5 }])),
      put('assignment', { node: 'host-1', module: 'web', config: { port: 80 } }),
      put('pool', { name: 'runners', template: 'edge', target: 2, min: 1, max: 4, lifecycle: 'ephemeral', status: 'active' }),
      put('version', { module: 'web', number: 1, artifacts: { amd64: { digest } } }),
      put('trust', { module: 'web', publishers: [toBase64Url(generateKeyPair(random).publicKey)] }),
      { op: 'remove', kind: 'module', key: 'old' },
    ];
    const batch = desiredBody(values);
    expect(desiredBody(parseDesiredBody(batch))).toBe(batch);
  });

  it('refuses a body that is not canonical, a bad value with its path, and one key changed twice', () => {
    const body = desiredBody([put('module', module('web'))]);
    expect(() => parseDesiredBody(body.replace('{"changes"', '{ "changes"'))).toThrow(/canonical/);
    expect(() => desiredBody([put('pool', { name: 'p', template: 't', target: 5, max: 2 })])).toThrow(/changes\[0\]: pool "p".target: must be at most max/);
    expect(() => desiredBody([put('module', module('web')), { op: 'remove', kind: 'module', key: 'web' }])).toThrow(/module\/web is changed twice/);
    expect(() => desiredBody([])).toThrow(InvalidDesiredEntryError);
    expect(() => parseDesiredBody('{"changes":[],"more":1}')).toThrow(/\{"changes"/);
  });

  it('folds entries in time order: later puts replace, removes delete, a revoked operator\'s later entries do not count', () => {
    const other = operatorOf('other');
    const entries = [
      entry([put('module', module('web', { priority: 1 })), put('module', module('db'))], 10),
      entry([put('module', module('web', { priority: 2 }))], 20),
      entry([{ op: 'remove', kind: 'module', key: 'db' }], 30),
      entry([put('module', module('web', { priority: 9 }))], 40, other),
    ];
    const order = [entries[3]!, entries[1]!, entries[0]!, entries[2]!];
    const folded = foldDesired(order.sort((a, b) => a.at - b.at));
    expect(folded.catalog.modules.map((m) => [m.name, m.priority])).toEqual([['web', 9]]);
    const revoked = foldDesired([...entries], (key) => (key === other.publicKey ? 35 : undefined));
    expect(revoked.catalog.modules.map((m) => [m.name, m.priority])).toEqual([['web', 2]]);
    expect(revoked.entries).toBe(3);
  });

  it('lets a version move only along its lifecycle and never change its artifacts', () => {
    const v1 = { module: 'web', number: 1, artifacts: { amd64: { digest } } };
    const folded = foldDesired([
      entry([put('version', v1)], 1),
      entry([put('version', { ...v1, state: 'staging' })], 2),
      entry([put('version', { ...v1, state: 'live' })], 3),
      entry([put('version', { ...v1, state: 'blessed', artifacts: { arm64: { digest } } })], 4),
      entry([put('version', { module: 'web', number: 2, state: 'live', artifacts: { amd64: { digest } } })], 5),
    ]);
    expect(folded.catalog.versions.map((v) => [v.module, v.number, v.state])).toEqual([['web', 1, 'staging']]);
    expect(folded.skipped.map((s) => s.reason)).toEqual([
      expect.stringMatching(/web@1: .*live/),
      expect.stringMatching(/artifacts and signature never change/),
      expect.stringMatching(/a new version starts built/),
    ]);
  });

  it('takes an entry only from a certified operator, with its own signature, for this document', () => {
    const verifier = new DecisionVerifier();
    const good = entry([put('module', module('web'))], 1);
    // What signs an entry is often a whole key file: nothing but the certificate goes into it.
    const keyFile = { ...ops, privateKey: 'secret', kind: 'powernode-operator-key' } as SigningOperator;
    expect(Object.keys(signDesiredEntry(keyFile, fleetId, DESIRED_CATALOG_DOC_ID, [put('module', module('web'))], 1).operator).sort()).toEqual(['addedAt', 'certificate', 'name', 'publicKey']);
    expect(desiredEntryProblem(fleet, DESIRED_CATALOG_DOC_ID, good, verifier)).toBeUndefined();
    const stranger = operatorOf('stranger', generateKeyPair(random).seed);
    expect(desiredEntryProblem(fleet, DESIRED_CATALOG_DOC_ID, entry([put('module', module('web'))], 1, stranger), verifier)).toMatch(/not signed by an operator/);
    const tampered = { ...good, body: desiredBody([put('module', module('web', { priority: 7 }))]) };
    expect(desiredEntryProblem(fleet, DESIRED_CATALOG_DOC_ID, tampered, verifier)).toMatch(/signature does not verify/);
    const elsewhere = entry([put('module', module('web'))], 1, ops, 'desired/other');
    expect(desiredEntryProblem(fleet, DESIRED_CATALOG_DOC_ID, elsewhere, verifier)).toMatch(/signature does not verify/);
    // Revoked operators are refused where entries are made, not where they are relayed.
    const revokedFleet = { ...fleet, operators: [{ ...fleet.operators[0]!, revokedAt: 5 }] };
    expect(desiredEntryProblem(revokedFleet, DESIRED_CATALOG_DOC_ID, good, verifier)).toBeUndefined();
    expect(desiredEntryProblem(revokedFleet, DESIRED_CATALOG_DOC_ID, good, verifier, { activeAt: 6 })).toMatch(/revoked/);
  });
});

describe('catalog rules where a change is made', () => {
  it('refuses an illegal version move and a blessed version its trust policy does not trust; takes a trusted one', () => {
    const publisher = generateKeyPair(random);
    const unsigned = { module: 'web', number: 1, artifacts: { amd64: { digest } } };
    const signed = { ...unsigned, signature: { publicKey: toBase64Url(publisher.publicKey), signature: toBase64Url(signBytes(publisher.seed, versionStatement(moduleVersionOf(unsigned)))) } };
    const held = [entry([put('module', module('web')), put('version', signed)], 1), entry([put('version', { ...signed, state: 'staging' })], 2)];
    expect(catalogProblem(held, [entry([put('version', { ...signed, state: 'retired' })], 3)], () => undefined)).toBeUndefined();
    expect(catalogProblem(held, [entry([put('version', { ...signed, state: 'live' })], 3)], () => undefined)).toMatch(/staging cannot move to live/);
    expect(catalogProblem(held, [entry([put('version', { ...signed, state: 'blessed' })], 3)], () => undefined)).toMatch(/web@1 cannot be blessed: web has no trust policy/);
    const stranger = toBase64Url(generateKeyPair(random).publicKey);
    expect(catalogProblem(held, [entry([put('trust', { module: 'web', publishers: [stranger] }), put('version', { ...signed, state: 'blessed' })], 3)], () => undefined)).toMatch(/which its trust policy does not name/);
    expect(catalogProblem(held, [entry([put('trust', { module: 'web', publishers: [toBase64Url(publisher.publicKey)] }), put('version', { ...signed, state: 'blessed' })], 3)], () => undefined)).toBeUndefined();
  });

  it('skips in the fold, on every node, a blessed or live version its trust policy did not trust at that point, however it got in', () => {
    const publisher = generateKeyPair(random);
    const unsigned = { module: 'web', number: 1, artifacts: { amd64: { digest } } };
    const signed = { ...unsigned, signature: { publicKey: toBase64Url(publisher.publicKey), signature: toBase64Url(signBytes(publisher.seed, versionStatement(moduleVersionOf(unsigned)))) } };
    const staged = [entry([put('module', module('web')), put('version', signed)], 1), entry([put('version', { ...signed, state: 'staging' })], 2)];
    const stranger = toBase64Url(generateKeyPair(random).publicKey);
    // Written past the API (a modified node, a replica that did not check): the fold leaves it staging.
    const untrusted = foldDesired([...staged, entry([put('trust', { module: 'web', publishers: [stranger] })], 3), entry([put('version', { ...signed, state: 'blessed' })], 4)]);
    expect(untrusted.catalog.versions.map((v) => v.state)).toEqual(['staging']);
    expect(untrusted.skipped).toEqual([expect.objectContaining({ reason: expect.stringMatching(/web@1 cannot be blessed: .* which its trust policy does not name/) })]);
    // Blessed before the policy existed: skipped too, and a later policy does not bless it after the fact.
    const early = foldDesired([...staged, entry([put('version', { ...signed, state: 'blessed' })], 3), entry([put('trust', { module: 'web', publishers: [toBase64Url(publisher.publicKey)] })], 4)]);
    expect(early.catalog.versions.map((v) => v.state)).toEqual(['staging']);
    // A forged signature under a named key does not pass either.
    const forged = { ...signed, artifacts: { amd64: { digest: `sha256:${'b'.repeat(64)}` } } };
    const withForged = foldDesired([entry([put('module', module('web')), put('trust', { module: 'web', publishers: [toBase64Url(publisher.publicKey)] }), put('version', forged)], 1), entry([put('version', { ...forged, state: 'staging' })], 2), entry([put('version', { ...forged, state: 'blessed' })], 3)]);
    expect(withForged.catalog.versions.map((v) => v.state)).toEqual(['staging']);
    expect(withForged.skipped[0]?.reason).toMatch(/signature that does not verify/);
    const trusted = foldDesired([...staged, entry([put('trust', { module: 'web', publishers: [toBase64Url(publisher.publicKey)] })], 3), entry([put('version', { ...signed, state: 'blessed' })], 4)]);
    expect(trusted.catalog.versions.map((v) => v.state)).toEqual(['blessed']);
  });
});

describe('signature verdicts', () => {
  it('never let a remembered verdict cover other content under the same signature', () => {
    const verifier = new DecisionVerifier();
    const decision = signDecision({ seed: ops.seed, publicKey: ops.publicKey }, fleetId, 'labels', { node: '12D3KooWFvEBaB7vbJdUM1RYRkK7YZcn2uDveZrDF8qWPAxJYyvi', set: { a: '1' }, remove: [] }, 1);
    expect(verifier.signatureValid(fleetId, decision)).toBe(true);
    expect(verifier.signatureValid(fleetId, { ...decision, body: decision.body.replace('"1"', '"2"') })).toBe(false);
    const good = entry([put('module', module('web'))], 1);
    expect(desiredEntryProblem(fleet, DESIRED_CATALOG_DOC_ID, good, verifier)).toBeUndefined();
    expect(desiredEntryProblem(fleet, DESIRED_CATALOG_DOC_ID, { ...good, at: 2 }, verifier)).toMatch(/signature does not verify/);
  });
});

describe('desired document changes', () => {
  const verifier = new DecisionVerifier();
  const record = (doc: A.Doc<DesiredDocument>, e: DesiredEntry): A.Doc<DesiredDocument> => A.change(doc, (d) => recordDesiredEntry(d, e));
  const problem = (before: A.Doc<DesiredDocument>, after: A.Doc<DesiredDocument>): string | undefined =>
    desiredChangeProblem(DESIRED_CATALOG_DOC_ID, before as never, after as never, fleet, verifier);

  it('accepts added entries, concurrent writes of one entry, and refuses edits, deletions and foreign keys', () => {
    const empty = A.init<DesiredDocument>();
    const first = record(empty, entry([put('module', module('web'))], 1));
    expect(problem(empty, first)).toBeUndefined();
    const second = record(first, entry([put('module', module('db'))], 2));
    expect(problem(first, second)).toBeUndefined();
    const key = Object.keys(first).find((k) => k !== 'schema')!;
    expect(problem(second, A.change(A.clone(second), (d) => void ((d[key] as { at: number }).at = 99)))).toMatch(/may not change/);
    expect(problem(second, A.change(A.clone(second), (d) => void delete d[key]))).toMatch(/may not change or disappear/);
    expect(problem(second, A.change(A.clone(second), (d) => void (d['junk'] = { at: 1 })))).toMatch(/malformed entry/);
    expect(problem(second, A.change(A.clone(second), (d) => void (d.schema = 2)))).toMatch(/schema 1/);
    // Two nodes record the same entry at once (a retried request): both copies are the entry.
    const shared = entry([put('pool', { name: 'p', template: 't' })], 3);
    const a = record(A.clone(second, { actor: 'aa' }), shared);
    const b = record(A.clone(second, { actor: 'bb' }), shared);
    expect(problem(a, A.merge(A.clone(a), b))).toBeUndefined();
    expect(problem(b, A.merge(A.clone(b), a))).toBeUndefined();
    // Nothing may ride along in an entry, and a losing concurrent write under an entry's key is
    // checked like the winner: a member cannot store junk beside (or behind) a valid entry.
    const padded = record(A.clone(second, { actor: 'ee' }), shared);
    const junk = A.change(A.clone(second, { actor: 'ee' }), (d) => {
      recordDesiredEntry(d, shared);
      (d[shared.signature] as Record<string, unknown>)['junk'] = 'x'.repeat(1000);
    });
    expect(problem(second, junk)).toMatch(/malformed entry/);
    const loser = A.change(A.clone(second, { actor: '00' }), (d) => void (d[shared.signature] = { at: 5, body: 'x' }));
    for (const merged of [A.merge(A.clone(padded), loser), A.merge(A.clone(loser), padded)]) expect(problem(second, merged)).toMatch(/may not change|malformed/);
    // Two documents started apart (two nodes' first entries) merge into one with both.
    const left = record(A.init<DesiredDocument>({ actor: 'cc' }), entry([put('module', module('x'))], 4));
    const right = record(A.init<DesiredDocument>({ actor: 'dd' }), entry([put('module', module('y'))], 5));
    const merged = A.merge(A.clone(left), right);
    expect(problem(left, merged)).toBeUndefined();
    expect(foldDesired(readDesiredEntries(toPlain(merged) as Record<string, unknown>)).catalog.modules.map((m) => m.name)).toEqual(['x', 'y']);
  });
});

describe('desired catalog on a fleet', () => {
  it('replicates recorded entries to every node, which folds the same catalog', async () => {
    const fleet = new Fleet();
    const nodes = [await fleet.found(0), await fleet.join(1, 0, 'a'), await fleet.join(2, 0, 'b')];
    await fleet.run(1_000);
    const signer: SigningOperator = { ...fleet.operator, seed: fleet.operatorKeys.seed };
    const at = fleet.clock.now();
    const changes = [put('module', module('base')), put('module', module('web', { requires: ['base'] })), put('template', template('edge', ['web']))];
    await fleet.pumpUntil(nodes[1]!.desired.record([signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, changes, at)]));
    expect(nodes[1]!.desired.catalog().catalog.modules.map((m) => m.name)).toEqual(['base', 'web']);
    await fleet.pumpUntil(nodes[2]!.desired.record([signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, [put('assignment', { node: nodes[0]!.peer, module: 'web' })], at + 1)]));
    await fleet.run(2_000);
    for (const node of nodes) {
      const { catalog } = node.desired.catalog();
      expect(catalog.modules.map((m) => m.name)).toEqual(['base', 'web']);
      expect(catalog.templates.map((t) => t.name)).toEqual(['edge']);
      expect(catalog.assignments.map((a) => [a.node, a.module])).toEqual([[nodes[0]!.peer, 'web']]);
    }
  });

  it('refuses entries dated in the future or by a stranger, recording nothing of the request', async () => {
    const fleet = new Fleet();
    const node = await fleet.found(0);
    const signer: SigningOperator = { ...fleet.operator, seed: fleet.operatorKeys.seed };
    const good = signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, [put('module', module('web'))], fleet.clock.now());
    const future = signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, [put('module', module('db'))], fleet.clock.now() + 3_600_000);
    await expect(fleet.pumpUntil(node.desired.record([good, future]))).rejects.toThrow(/entry 2 of 2: .*in the future/);
    const stranger = operatorOf('stranger', generateKeyPair(random).seed);
    await expect(fleet.pumpUntil(node.desired.record([signDesiredEntry(stranger, fleet.fleetId, DESIRED_CATALOG_DOC_ID, [put('module', module('db'))], fleet.clock.now())]))).rejects.toThrow(OperationRefusedError);
    expect(node.desired.catalog().catalog.modules).toEqual([]);
  });

  it('refuses a member\'s forged change to the catalog and counts it against that member', async () => {
    const fleet = new Fleet();
    const nodes = [await fleet.found(0), await fleet.join(1, 0, 'a'), await fleet.join(2, 0, 'b')];
    await fleet.run(1_000);
    const signer: SigningOperator = { ...fleet.operator, seed: fleet.operatorKeys.seed };
    await fleet.pumpUntil(nodes[0]!.desired.record([signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, [put('module', module('web'))], fleet.clock.now())]));
    await fleet.run(2_000);
    // Node 1 edits the module inside the stored entry (its body is no longer what was signed).
    await fleet.pumpUntil(
      nodes[1]!.store.change<DesiredDocument>(DESIRED_CATALOG_DOC_ID, (d) => {
        const key = Object.keys(d).find((k) => k !== 'schema')!;
        (d[key] as { at: number }).at = 1;
      }),
    );
    await fleet.run(2_000);
    for (const node of [nodes[0]!, nodes[2]!]) {
      expect(node.desired.catalog().catalog.modules.map((m) => m.name)).toEqual(['web']);
      expect(node.securityEvents().some((e) => e.peer === nodes[1]!.peer && e.kind === 'security.change_refused')).toBe(true);
    }
  });
});

describe('task request buckets (docs/CATALOG.md §Tasks: retention)', () => {
  const DAY = 86_400_000;
  const midnight = Date.UTC(2026, 11, 1);
  const task = (id: string, node: string): DesiredChange => put('task', { id, node, command: 'true', args: [], timeoutMs: 1_000 });

  it('names day buckets for requests and runs, and no undated task documents but the instance records', () => {
    expect(parseDocId('desired/tasks/2026-12-01')).toEqual({ kind: 'desired', area: 'tasks', day: '2026-12-01' });
    expect(parseDocId('desired/tasks')).toBeUndefined();
    expect(parseDocId('desired/tasks/2026-12-01/x')).toBeUndefined();
    expect(parseDocId('desired/catalog/2026-12-01')).toBeUndefined();
    const peer = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvqcH6zfrm5W5vJmUSWR7';
    expect(parseDocId(`tasks/${peer}/2026-12-01`)).toEqual({ kind: 'tasks', peerId: peer, day: '2026-12-01' });
    expect(parseDocId(`tasks/${peer}`)).toEqual({ kind: 'tasks', peerId: peer });
    expect(parseDocId(`tasks/${peer}/yesterday`)).toBeUndefined();
    expect(writerOfDoc(`tasks/${peer}/2026-12-01`)).toBe(peer);
    // Kept through the 30th day after its own, retired from the 31st.
    expect(isTaskBucketRetired('desired/tasks/2026-12-01', midnight + 31 * DAY - 1)).toBe(false);
    expect(isTaskBucketRetired('desired/tasks/2026-12-01', midnight + 31 * DAY)).toBe(true);
    expect(isTaskBucketRetired(`tasks/${peer}/2026-12-01`, midnight + 31 * DAY)).toBe(true);
    expect(isTaskBucketRetired(`tasks/${peer}`, midnight + 3_650 * DAY)).toBe(false);
    expect(isTaskBucketRetired('desired/catalog', midnight + 3_650 * DAY)).toBe(false);
  });

  it('takes an entry signed for desired/tasks into the bucket of its day only', () => {
    const verifier = new DecisionVerifier();
    const node = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvqcH6zfrm5W5vJmUSWR7';
    const signed = entry([task('t1', node)], midnight + 5_000, ops, DESIRED_TASKS_DOC_ID);
    expect(desiredEntryProblem(fleet, 'desired/tasks/2026-12-01', signed, verifier)).toBeUndefined();
    // Moved to another day's bucket (one that would outlive its runs), or out of the buckets.
    expect(desiredEntryProblem(fleet, 'desired/tasks/2026-12-02', signed, verifier)).toMatch(/signed on 2026-12-01, not on 2026-12-02/);
    expect(desiredEntryProblem(fleet, DESIRED_TASKS_DOC_ID, signed, verifier)).toMatch(/not a desired document/);
    // Signed for the catalog: its signature does not cover a task bucket.
    const forCatalog = entry([task('t1', node)], midnight + 5_000);
    expect(desiredEntryProblem(fleet, 'desired/tasks/2026-12-01', forCatalog, verifier)).toMatch(/signature does not verify/);
    // An entry whose time is past what a date holds is refused, not thrown on.
    expect(desiredEntryProblem(fleet, 'desired/tasks/2026-12-01', { ...signed, at: 9e15 }, verifier)).toMatch(/not a valid time/);
  });

  it('records each request in the bucket of its day, folds every bucket, and refuses one request of two days', async () => {
    const fleet = new Fleet();
    const node = await fleet.found(0);
    const peer = node.peer;
    const signer: SigningOperator = { ...fleet.operator, seed: fleet.operatorKeys.seed };
    const now = fleet.clock.now();
    const today = new Date(now).toISOString().slice(0, 10);
    const yesterday = new Date(now - DAY).toISOString().slice(0, 10);
    await fleet.pumpUntil(node.desired.record([signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, [task('t-old', peer)], now - DAY)], DESIRED_TASKS_DOC_ID));
    await fleet.pumpUntil(node.desired.record([signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, [task('t-new', peer)], now)], DESIRED_TASKS_DOC_ID));
    expect(node.store.ids().filter((id) => id.startsWith('desired/')).sort()).toEqual([`desired/tasks/${yesterday}`, `desired/tasks/${today}`].sort());
    expect([...node.desired.tasks().tasks.keys()].sort()).toEqual(['t-new', 't-old']);
    // The same id asked for again with other content, in another bucket, is still refused.
    const again = signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, [put('task', { id: 't-old', node: peer, command: 'false', args: [], timeoutMs: 1_000 })], now);
    await expect(fleet.pumpUntil(node.desired.record([again], DESIRED_TASKS_DOC_ID))).rejects.toThrow(/t-old/);
    const twoDays = [now - DAY, now].map((at, i) => signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, [task(`t-${i}`, peer)], at));
    await expect(fleet.pumpUntil(node.desired.record(twoDays, DESIRED_TASKS_DOC_ID))).rejects.toThrow(/signed on different days/);
    const ancient = signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, [task('t-ancient', peer)], now - 40 * DAY);
    await expect(fleet.pumpUntil(node.desired.record([ancient], DESIRED_TASKS_DOC_ID))).rejects.toThrow(/past the 30 days/);
    expect([...node.desired.tasks().tasks.keys()].sort()).toEqual(['t-new', 't-old']);
    // The same task asked for again on another day, even word for word, is refused (its runs are
    // kept with the first request and retire with it: the second would then read as a new task).
    const sameAgain = signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, [task('t-old', peer)], now);
    await expect(fleet.pumpUntil(node.desired.record([sameAgain], DESIRED_TASKS_DOC_ID))).rejects.toThrow(new RegExp(`already asked for on ${yesterday}`));
    // An entry dated past year 9999 is refused with a reason, not an internal error.
    const farOff = signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, [task('t-far', peer)], Date.UTC(10_000, 0, 2));
    await expect(fleet.pumpUntil(node.desired.record([farOff], DESIRED_TASKS_DOC_ID))).rejects.toThrow(/not a valid time/);
    // A bucket is taken in from a peer only for a real day from 30 days ago to tomorrow: a retired
    // one would come back, and one of a far day would never retire.
    const bucket = (ms: number): string => `desired/tasks/${new Date(ms).toISOString().slice(0, 10)}`;
    expect(node.desired.accepts(bucket(now))).toBe(true);
    expect(node.desired.accepts(bucket(now + DAY))).toBe(true);
    expect(node.desired.accepts(bucket(now - 31 * DAY))).toBe(false);
    expect(node.desired.accepts(bucket(now + 3 * DAY))).toBe(false);
    expect(node.desired.accepts('desired/tasks/9999-99-99')).toBe(false);
    expect(node.desired.accepts('desired/tasks/2026-02-30')).toBe(false);
    expect(isTaskBucketAcceptable(`tasks/${peer}/9999-12-31`, now)).toBe(false);
    // A bucket past its retention is not read even before the hourly check deletes it.
    fleet.clock.jumpTo(now + 31 * DAY + DAY);
    expect([...node.desired.tasks().tasks.keys()]).toEqual([]);
  });
});
