import { ImmutableString } from '@automerge/automerge';
import type { Assignment } from './catalog/assignments.ts';
import { assignmentKey, assignmentOf } from './catalog/assignments.ts';
import type { DesiredCatalog } from './catalog/desired.ts';
import { CatalogInputError } from './catalog/input.ts';
import { type Module, moduleInput, moduleOf } from './catalog/module.ts';
import { compareText } from './catalog/order.ts';
import { type Pool, poolOf } from './catalog/pool.ts';
import { type Template, templateOf } from './catalog/template.ts';
import { type TrustPolicy, type TrustVerdict, checkVersionTrust, trustPolicyOf } from './catalog/trust.ts';
import { IllegalTransitionError } from './catalog/state-machine.ts';
import { type ModuleVersion, moduleVersionOf, moveVersion, versionStatement } from './catalog/version.ts';
import { type InstanceActionRequest, type TaskCancel, type TaskRequest, instanceActionOf, taskCancelOf, taskRequestOf } from './catalog/task-request.ts';
import { dayOf } from './events.ts';
import { type DesiredArea, type DocId, parseDocId } from './ids.ts';
import { SCHEMA_VERSIONS } from './schema.ts';

/**
 * The desired catalog document (docs/CATALOG.md §Desired state): modules, module versions,
 * trust policies, templates, assignments and pools, as operators declared them. Its only content
 * after its schema field is entries at the root, each keyed by its signature: a batch of changes
 * an operator signed where the key is. No node ever signs one, and every replica checks every
 * entry it takes in (mesh/trust/desired.ts), so a member that relays the document cannot forge
 * or alter the catalog. Entries sit at the root, not in a nested map, so that two nodes writing
 * the first entries concurrently cannot create two competing maps (one of which would hide the
 * other's entries).
 */
export const DESIRED_CATALOG_DOC_ID = 'desired/catalog' as DocId;

/**
 * The task requests area: tasks operators asked nodes to run, cancellations and instance actions.
 * Entries are signed for this id and stored in the bucket of their day, `desired/tasks/<day>`
 * ({@link desiredTasksBucketId}; docs/CATALOG.md §Tasks: retention). No document has this id.
 */
export const DESIRED_TASKS_DOC_ID = 'desired/tasks' as DocId;

/** The id entries of desired document `docId` are signed for: its area (`desired/tasks` for a day bucket). */
export function signedDocIdOf(docId: string): string {
  const parsed = parseDocId(docId);
  return parsed?.kind === 'desired' ? `desired/${parsed.area}` : docId;
}

export const DESIRED_KINDS = ['module', 'version', 'trust', 'template', 'assignment', 'pool', 'task', 'task-cancel', 'instance-action'] as const;
export type DesiredKind = (typeof DESIRED_KINDS)[number];

/** Which kinds each desired document holds, and whether its values may be removed. */
export const DESIRED_AREA_KINDS: Readonly<Record<DesiredArea, { readonly kinds: readonly DesiredKind[]; readonly removable: boolean }>> = {
  catalog: { kinds: ['module', 'version', 'trust', 'template', 'assignment', 'pool'], removable: true },
  // A task, once asked for, stays on record: it is cancelled, never removed.
  tasks: { kinds: ['task', 'task-cancel', 'instance-action'], removable: false },
};

/** The checked value a `put` of each kind carries. */
export interface DesiredValues {
  readonly module: Module;
  readonly version: ModuleVersion;
  readonly trust: TrustPolicy;
  readonly template: Template;
  readonly assignment: Assignment;
  readonly pool: Pool;
  readonly task: TaskRequest;
  readonly 'task-cancel': TaskCancel;
  readonly 'instance-action': InstanceActionRequest;
}

/** One change of an entry: put a whole value (replacing what has its key) or remove a key. */
export type DesiredChange =
  | { readonly [K in DesiredKind]: { readonly op: 'put'; readonly kind: K; readonly value: DesiredValues[K] } }[DesiredKind]
  | { readonly op: 'remove'; readonly kind: DesiredKind; readonly key: string };

/** The certificate of the operator who signed an entry, carried in it (checked against the fleet root key). */
export interface EntryOperator {
  readonly publicKey: string;
  readonly name: string;
  readonly addedAt: number;
  readonly certificate: string;
}

/** A signed batch of changes, as the document holds it. */
export interface DesiredEntry {
  /** The operator's clock when it signed: entries apply in (at, signature) order. */
  readonly at: number;
  /** Canonical JSON of `{"changes": [...]}` ({@link desiredBody}). */
  readonly body: string;
  readonly operator: EntryOperator;
  /** base64url Ed25519 signature over {@link desiredStatement}. */
  readonly signature: string;
}

/** Thrown when an entry's content is not a valid batch of changes. */
export class InvalidDesiredEntryError extends Error {
  override name = 'InvalidDesiredEntryError';
}

/** At most this many characters of body per entry; a larger batch is split over entries of one request. */
export const DESIRED_BODY_CHARS_MAX = 256 * 1024;
/** At most this many changes per entry. */
export const DESIRED_CHANGES_MAX = 5_000;

const encoder = new TextEncoder();

/** What an operator signs for an entry of document `docId`. */
export function desiredStatement(fleetId: string, docId: string, entry: Omit<DesiredEntry, 'signature'>): Uint8Array {
  return encoder.encode(`powernode-desired/v1\n${fleetId}\n${docId}\n${entry.at}\n${entry.operator.publicKey}\n${entry.body}`);
}

/** The key a value of `kind` is stored under: a name, `node:module`, or `module@number`. */
export function desiredKeyOf<K extends DesiredKind>(kind: K, value: DesiredValues[K]): string {
  switch (kind) {
    case 'assignment':
      return assignmentKey(value as Assignment);
    case 'version': {
      const version = value as ModuleVersion;
      return `${version.module}@${version.number}`;
    }
    case 'trust':
      return (value as TrustPolicy).module;
    case 'task':
    case 'task-cancel':
    case 'instance-action':
      return (value as TaskRequest | TaskCancel | InstanceActionRequest).id;
    default:
      return (value as Module | Template | Pool).name;
  }
}

/** Checks a value of `kind` from outside (a request, a document); throws CatalogInputError. */
export function desiredValueOf<K extends DesiredKind>(kind: K, value: unknown): DesiredValues[K] {
  const checkers: { readonly [P in DesiredKind]: (raw: unknown) => DesiredValues[P] } = {
    module: moduleOf,
    version: moduleVersionOf,
    trust: trustPolicyOf,
    template: templateOf,
    assignment: (raw) => assignmentOf(raw, 'assignment'),
    pool: poolOf,
    task: taskRequestOf,
    'task-cancel': taskCancelOf,
    'instance-action': instanceActionOf,
  };
  return checkers[kind](value) as DesiredValues[K];
}

/** A checked value as its checker reads it (what a body stores): a module's manifest in file format, other values as they are. */
export function desiredInputOf<K extends DesiredKind>(kind: K, value: DesiredValues[K]): unknown {
  return kind === 'module' ? moduleInput(value as Module) : value;
}

/** The canonical body of a batch: each value checked, keys sorted; the signer and every checker see the same text. */
export function desiredBody(changes: readonly DesiredChange[]): string {
  if (changes.length === 0) throw new InvalidDesiredEntryError('an entry changes at least one thing');
  if (changes.length > DESIRED_CHANGES_MAX) throw new InvalidDesiredEntryError(`an entry holds at most ${DESIRED_CHANGES_MAX} changes (got ${changes.length}): split the batch`);
  const checked = checkChanges(changes, 'checked');
  const body = canonicalJson({ changes: checked.map((change) => (change.op === 'put' ? { ...change, value: desiredInputOf(change.kind, change.value) } : change)) });
  if (body.length > DESIRED_BODY_CHARS_MAX) throw new InvalidDesiredEntryError(`an entry body is at most ${DESIRED_BODY_CHARS_MAX} characters (got ${body.length}): split the batch`);
  return body;
}

/**
 * Each change checked (values by their kind's checker), and no key changed twice. Values come
 * `checked` (from code: checked again through their input form) or as `input` (from JSON).
 */
function checkChanges(changes: readonly unknown[], form: 'checked' | 'input'): DesiredChange[] {
  const seen = new Set<string>();
  return changes.map((change, index) => {
    const normal = checkChange(change as DesiredChange, index, form);
    const key = `${normal.kind}/${normal.op === 'put' ? desiredKeyOf(normal.kind, normal.value) : normal.key}`;
    if (seen.has(key)) throw new InvalidDesiredEntryError(`changes[${index}]: ${key} is changed twice in one entry`);
    seen.add(key);
    return normal;
  });
}

/** Refuses changes a document of `area` does not hold. */
export function checkAreaChanges(area: DesiredArea, changes: readonly DesiredChange[]): void {
  const { kinds, removable } = DESIRED_AREA_KINDS[area];
  changes.forEach((change, index) => {
    if (!kinds.includes(change.kind)) throw new InvalidDesiredEntryError(`changes[${index}]: desired/${area} holds ${kinds.join(', ')}, not ${change.kind}`);
    if (change.op === 'remove' && !removable) throw new InvalidDesiredEntryError(`changes[${index}]: nothing is removed from desired/${area}`);
  });
}

/** Parses and checks an entry's body into its checked changes; throws {@link InvalidDesiredEntryError}. */
export function parseDesiredBody(body: string): DesiredChange[] {
  if (body.length > DESIRED_BODY_CHARS_MAX) throw new InvalidDesiredEntryError(`an entry body is at most ${DESIRED_BODY_CHARS_MAX} characters`);
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new InvalidDesiredEntryError('an entry body must be JSON');
  }
  const changes = (value as { changes?: unknown } | null)?.changes;
  if (typeof value !== 'object' || value === null || Object.keys(value).length !== 1 || !Array.isArray(changes)) {
    throw new InvalidDesiredEntryError('an entry body is {"changes": [...]}');
  }
  const checked = checkChanges(changes, 'input');
  if (desiredBody(checked) !== body) throw new InvalidDesiredEntryError('an entry body must be in canonical form');
  return checked;
}

function checkChange(change: DesiredChange, index: number, form: 'checked' | 'input'): DesiredChange {
  const path = `changes[${index}]`;
  if (typeof change !== 'object' || change === null) throw new InvalidDesiredEntryError(`${path}: must be an object`);
  const { op, kind } = change as { op?: unknown; kind?: unknown };
  if (!(DESIRED_KINDS as readonly unknown[]).includes(kind)) throw new InvalidDesiredEntryError(`${path}.kind: must be one of ${DESIRED_KINDS.join(', ')}`);
  const known = op === 'put' ? ['op', 'kind', 'value'] : ['op', 'kind', 'key'];
  const unknown = Object.keys(change).find((field) => !known.includes(field));
  if (unknown !== undefined) throw new InvalidDesiredEntryError(`${path}: unknown field ${JSON.stringify(unknown)}`);
  if (op === 'remove') {
    const key = (change as { key?: unknown }).key;
    if (typeof key !== 'string' || key.length === 0 || key.length > 300) throw new InvalidDesiredEntryError(`${path}.key: must be the key of what to remove`);
    return { op, kind: kind as DesiredKind, key };
  }
  if (op !== 'put') throw new InvalidDesiredEntryError(`${path}.op: must be put or remove`);
  try {
    const given = (change as { value?: unknown }).value;
    const input = form === 'checked' && typeof given === 'object' && given !== null ? desiredInputOf(kind as DesiredKind, given as never) : given;
    return { op, kind, value: desiredValueOf(kind as DesiredKind, input) } as DesiredChange;
  } catch (error) {
    if (error instanceof CatalogInputError) throw new InvalidDesiredEntryError(`${path}: ${error.message}`);
    throw error;
  }
}

/** JSON with object keys sorted at every level, absent (undefined) fields left out. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const field = (value as Record<string, unknown>)[key];
    if (field !== undefined) out[key] = sortKeys(field);
  }
  return out;
}

/** The document as Automerge holds it. */
export interface DesiredDocument {
  schema?: number;
  [signature: string]: unknown;
}

/** Adds an entry to the document (the caller has checked it). Idempotent. */
export function recordDesiredEntry(draft: DesiredDocument, entry: DesiredEntry): void {
  if (draft.schema === undefined) draft.schema = SCHEMA_VERSIONS.desired;
  if (draft[entry.signature] !== undefined) return;
  const str = (value: string): ImmutableString => new ImmutableString(value);
  draft[entry.signature] = {
    at: entry.at,
    body: str(entry.body),
    operator: str(entry.operator.publicKey),
    operatorName: str(entry.operator.name),
    operatorAddedAt: entry.operator.addedAt,
    certificate: str(entry.operator.certificate),
  };
}

const ENTRY_FIELDS = ['at', 'body', 'operator', 'operatorName', 'operatorAddedAt', 'certificate'] as const;

/** Reads one stored entry (plain), or undefined when it is malformed (a field missing, wrong, or extra). */
export function readDesiredEntry(signature: string, raw: unknown): DesiredEntry | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  // Exactly the stored fields: nothing else may ride along in a signed entry's map.
  const fields = Object.keys(e);
  if (fields.length !== ENTRY_FIELDS.length || !ENTRY_FIELDS.every((field) => fields.includes(field))) return undefined;
  const text = (value: unknown): value is string => typeof value === 'string';
  const time = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
  if (!time(e['at']) || !text(e['body']) || !text(e['operator']) || !text(e['operatorName']) || !time(e['operatorAddedAt']) || !text(e['certificate'])) return undefined;
  return {
    at: e['at'],
    body: e['body'],
    operator: { publicKey: e['operator'], name: e['operatorName'], addedAt: e['operatorAddedAt'], certificate: e['certificate'] },
    signature,
  };
}

/** The entries of the plain document, in the order they apply: by time, then signature. */
export function readDesiredEntries(root: Readonly<Record<string, unknown>>): DesiredEntry[] {
  const out: DesiredEntry[] = [];
  for (const [key, raw] of Object.entries(root)) {
    if (key === 'schema') continue;
    const entry = readDesiredEntry(key, raw);
    if (entry !== undefined) out.push(entry);
  }
  return out.sort(desiredEntryOrder);
}

/** The order entries apply in: by time, then signature (the same on every node). */
export function desiredEntryOrder(a: DesiredEntry, b: DesiredEntry): number {
  return a.at - b.at || compareText(a.signature, b.signature);
}

/** Why a change was not applied when folding (it stays in the document, for the record). */
export interface SkippedChange {
  readonly entry: string;
  readonly index: number;
  readonly reason: string;
}

/**
 * Applies the entries in order (they come sorted by time, then signature) through `apply`, which
 * returns why a change was not applied, if it was not. Entries of an operator dated on or after
 * its revocation are left out (`revokedAt`, from the fleet document), and so are a revoked
 * operator's entries outside its revocation's cut (`kept`: the signatures the document held at the
 * heads the revocation names, once this node holds those heads).
 */
function foldEntries(
  entries: readonly DesiredEntry[],
  revokedAt: (operator: string) => number | undefined,
  apply: (change: DesiredChange) => string | undefined,
  onEntry: (entry: DesiredEntry) => void = () => undefined,
  kept: (operator: string) => ReadonlySet<string> | undefined = () => undefined,
): { skipped: SkippedChange[]; entries: number } {
  const skipped: SkippedChange[] = [];
  let applied = 0;
  for (const entry of entries) {
    const revoked = revokedAt(entry.operator.publicKey);
    if (revoked !== undefined && (entry.at >= revoked || kept(entry.operator.publicKey)?.has(entry.signature) === false)) continue;
    onEntry(entry);
    let changes: DesiredChange[];
    try {
      changes = parseDesiredBody(entry.body);
    } catch (error) {
      skipped.push({ entry: entry.signature, index: -1, reason: (error as Error).message });
      continue;
    }
    applied++;
    changes.forEach((change, index) => {
      const problem = apply(change);
      if (problem !== undefined) skipped.push({ entry: entry.signature, index, reason: problem });
    });
  }
  return { skipped, entries: applied };
}

const trustVerdicts = new Map<string, TrustVerdict>();
const TRUST_VERDICTS_MAX = 10_000;

/**
 * Why `version` may not be in its state under `policy` (its module's trust policy as folded so
 * far), or undefined: a blessed or live version must be signed by a key the policy names, over
 * what it is. Verdicts are kept by everything the check reads, so a fold repeats no signature check.
 */
function versionTrustProblem(version: ModuleVersion, policy: TrustPolicy | undefined): string | undefined {
  if (version.state !== 'blessed' && version.state !== 'live') return undefined;
  const what = `${version.module}@${version.number} cannot be ${version.state}`;
  if (policy === undefined) return `${what}: ${version.module} has no trust policy`;
  const key = JSON.stringify([Buffer.from(versionStatement(version)).toString('base64'), version.signature ?? null, policy.publishers]);
  let verdict = trustVerdicts.get(key);
  if (verdict === undefined) {
    verdict = checkVersionTrust(version, policy);
    if (trustVerdicts.size >= TRUST_VERDICTS_MAX) trustVerdicts.clear();
    trustVerdicts.set(key, verdict);
  }
  return verdict.trusted ? undefined : `${what}: ${verdict.reason}`;
}

/**
 * The catalog the entries declare: a put replaces what has its key, a remove deletes it. A version
 * may only move between states as the version lifecycle allows, and otherwise keeps its
 * artifacts and signature; a blessed or live one must be trusted by its module's trust policy as
 * it stands at that point of the fold. A change that breaks this is skipped, the same way on every
 * node, whoever wrote it (a node refuses it where it is made, too: `catalogProblem`).
 */
export function foldDesired(
  entries: readonly DesiredEntry[],
  revokedAt: (operator: string) => number | undefined = () => undefined,
  kept: (operator: string) => ReadonlySet<string> | undefined = () => undefined,
): { catalog: DesiredCatalog; skipped: SkippedChange[]; entries: number } {
  const maps = Object.fromEntries(DESIRED_KINDS.map((kind) => [kind, new Map<string, unknown>()])) as { [K in DesiredKind]: Map<string, DesiredValues[K]> };
  const folded = foldEntries(entries, revokedAt, (change) => {
    const map = maps[change.kind] as Map<string, unknown>;
    if (change.op === 'remove') {
      map.delete(change.key);
      return undefined;
    }
    const key = desiredKeyOf(change.kind, change.value);
    const problem =
      change.kind === 'version'
        ? (versionChangeProblem(map.get(key) as ModuleVersion | undefined, change.value) ?? versionTrustProblem(change.value, maps.trust.get(change.value.module)))
        : undefined;
    if (problem === undefined) map.set(key, change.value);
    return problem;
  }, undefined, kept);
  const sorted = <K extends DesiredKind>(kind: K): DesiredValues[K][] =>
    [...maps[kind].entries()].sort(([a], [b]) => compareText(a, b)).map(([, value]) => value);
  const catalog: DesiredCatalog = {
    modules: sorted('module'),
    versions: [...maps.version.values()].sort((a, b) => compareText(a.module, b.module) || a.number - b.number),
    trust: sorted('trust'),
    templates: sorted('template'),
    assignments: [...maps.assignment.values()].sort((a, b) => compareText(a.node, b.node) || compareText(a.module, b.module)),
    pools: sorted('pool'),
  };
  return { catalog, ...folded };
}

/** The tasks operators asked for, by id, with their cancellations, and the instance actions they asked for. */
export interface TaskRequests {
  readonly tasks: ReadonlyMap<string, TaskRequest & { readonly requestedAt: number; readonly by: string }>;
  readonly cancels: ReadonlyMap<string, TaskCancel & { readonly at: number; readonly by: string }>;
  /** In the order they were asked for. */
  readonly actions: ReadonlyArray<InstanceActionRequest & { readonly at: number; readonly by: string }>;
}

/**
 * The task requests the entries make. A task id is asked for once: a later request under the
 * same id with other content is skipped (a task never changes; ask for another). The first
 * cancellation of a task counts.
 */
export function foldTasks(entries: readonly DesiredEntry[], revokedAt: (operator: string) => number | undefined = () => undefined): TaskRequests & { skipped: SkippedChange[]; entries: number } {
  const tasks = new Map<string, TaskRequest & { requestedAt: number; by: string }>();
  const cancels = new Map<string, TaskCancel & { at: number; by: string }>();
  const actions = new Map<string, InstanceActionRequest & { at: number; by: string }>();
  let current: DesiredEntry | undefined;
  const folded = foldEntries(
    entries,
    revokedAt,
    (change) => {
      if (change.op !== 'put') return 'nothing is removed from the task requests';
      if (change.kind === 'task') {
        const held = tasks.get(change.value.id);
        if (held === undefined) tasks.set(change.value.id, { ...change.value, requestedAt: current!.at, by: current!.operator.publicKey });
        else if (canonicalJson({ ...held, requestedAt: undefined, by: undefined }) !== canonicalJson(change.value)) return `task ${change.value.id} was already asked for with other content`;
        // Asked again on another day: its runs are kept with the first request and retire with
        // it, and this one would then read as a new task and run again (docs/CATALOG.md §Tasks: retention).
        else if (dayOf(held.requestedAt) !== dayOf(current!.at)) return `task ${change.value.id} was already asked for on ${dayOf(held.requestedAt)}: ask for a new id`;
        return undefined;
      }
      if (change.kind === 'task-cancel') {
        if (!cancels.has(change.value.id)) cancels.set(change.value.id, { ...change.value, at: current!.at, by: current!.operator.publicKey });
        return undefined;
      }
      if (change.kind === 'instance-action') {
        if (!actions.has(change.value.id)) actions.set(change.value.id, { ...change.value, at: current!.at, by: current!.operator.publicKey });
        return undefined;
      }
      return `desired/tasks holds tasks, cancellations and instance actions, not ${change.kind}`;
    },
    (entry) => (current = entry),
  );
  return { tasks, cancels, actions: [...actions.values()], ...folded };
}

/** Why `next` may not replace `held` (a version's only change is its state, along the lifecycle), or undefined. */
export function versionChangeProblem(held: ModuleVersion | undefined, next: ModuleVersion): string | undefined {
  if (held === undefined) return next.state === 'built' ? undefined : `a new version starts built (${next.module}@${next.number} came as ${next.state})`;
  if (canonicalJson(held.artifacts) !== canonicalJson(next.artifacts) || canonicalJson(held.signature) !== canonicalJson(next.signature)) {
    return `${next.module}@${next.number}: a version's artifacts and signature never change; publish a new version`;
  }
  if (held.state === next.state) return undefined;
  try {
    moveVersion(held, next.state);
    return undefined;
  } catch (error) {
    if (error instanceof IllegalTransitionError) return `${next.module}@${next.number}: ${error.message}`;
    throw error;
  }
}

/** A module version's key, `module@number`. */
export function versionKey(version: Pick<ModuleVersion, 'module' | 'number'>): string {
  return `${version.module}@${version.number}`;
}
