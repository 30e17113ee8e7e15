import { type Assignment, assignmentOf } from './assignments.ts';
import {
  type FleetFileProblem, FLEET_FILE_LIMITS, type SourceMap, type SourcePosition, childPath, capFleetProblems, positionOf, readYaml, sortFleetProblems,
} from './fleet-yaml.ts';
import { CatalogInputError } from './input.ts';
import { type Module, moduleOf } from './module.ts';
import { compareText } from './order.ts';
import { type Pool, poolOf } from './pool.ts';
import { type Template, templateOf } from './template.ts';

/**
 * A checked fleet.yaml (docs/CATALOG.md §fleet.yaml). A section the file leaves out is
 * `undefined`: the file does not manage that kind, and applying it leaves that kind alone. A
 * section that is present, even `{}`, is the whole of that kind as the file wants it.
 */
export interface FleetFile {
  readonly modules?: readonly Module[];
  readonly templates?: readonly Template[];
  readonly assignments?: readonly Assignment[];
  readonly pools?: readonly Pool[];
  /**
   * The names under `provider_configs`. As in the original they are read and never applied
   * (they hold cloud credentials, which fleet.yaml does not rotate); their contents are not kept.
   */
  readonly providerConfigs: readonly string[];
  /** Original fields this release reads past without applying (a template's `description`…). */
  readonly notices: readonly FleetFileNotice[];
  /** Where each path is in the text, so later problems (a diff's) can point into it. */
  readonly positions: SourceMap;
}

/** Something read and deliberately not applied. */
export interface FleetFileNotice extends SourcePosition {
  readonly path: string;
  readonly message: string;
}

/** A whole checked file, or every problem found (never a part of a file). */
export type FleetFileResult = { readonly ok: true; readonly file: FleetFile } | { readonly ok: false; readonly problems: readonly FleetFileProblem[] };

/** The top-level sections, in the original's order. */
export const FLEET_SECTIONS = ['templates', 'modules', 'assignments', 'pools', 'provider_configs'] as const;

/** Top-level keys of the original that this release refuses, and why. */
const REFUSED_SECTIONS: Readonly<Record<string, string>> = {
  platforms: 'Powernode has no platform deployments; remove this section',
  fleet: 'Powernode has no fleet-wide default template or provider; remove this section',
};

/** fleet.yaml field → the checker's field, per kind; anything else is refused by name. */
const MODULE_FIELDS: Readonly<Record<string, string>> = {
  name: 'name', variety: 'variety', category: 'category', priority: 'priority', parent: 'parent', config: 'config',
  init_start: 'initStart', init_stop: 'initStop', init_restart: 'initRestart', reboot_required: 'rebootRequired', immutable: 'immutable',
  manifest: 'manifest', mask: 'mask', file_spec: 'fileSpec', package_spec: 'packageSpec', dependency_spec: 'dependencySpec', protected_spec: 'protectedSpec',
};
const TEMPLATE_MODULE_FIELDS: Readonly<Record<string, string>> = { enabled: 'enabled', priority: 'priority', config: 'config', recommends_override: 'recommendsOverride' };
const ASSIGNMENT_FIELDS: Readonly<Record<string, string>> = { template: 'template', config: 'config', enabled: 'enabled' };
const POOL_FIELDS: Readonly<Record<string, string>> = {
  name: 'name', template: 'template', target_size: 'target', min_size: 'min', max_size: 'max', lifecycle_class: 'lifecycle', status: 'status',
};
/** Fields the original's fleet.yaml carries that Powernode reads past, with a notice. */
const TEMPLATE_IGNORED = ['description', 'node_platform', 'node_platform_id', 'provider_region', 'instance_type'];
const ASSIGNMENT_IGNORED = ['priority'];

/**
 * Parses and checks a fleet.yaml: the 1 MiB cap (before parsing), safe YAML, the top-level
 * sections, and each entry with the catalog's own checks (moduleOf, templateOf, assignmentOf,
 * poolOf). Every syntax error is reported; for the schema, the first problem of every entry.
 */
export function parseFleetFile(text: string): FleetFileResult {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > FLEET_FILE_LIMITS.bytesMax) {
    return { ok: false, problems: [{ kind: 'too-large', path: '', line: 1, column: 1, message: `fleet.yaml is ${bytes} bytes; at most ${FLEET_FILE_LIMITS.bytesMax} (1 MiB) are read: split the fleet over several files or trim it` }] };
  }
  const source = readYaml(text);
  if (source.value === undefined) return { ok: false, problems: capFleetProblems(source.problems) };
  // Past duplicate keys, aliases and tags the rest of the file is still checked, so one run
  // reports them all; a refused value reads as nothing, and its schema problem would only repeat it.
  const refused = new Set(source.problems.map((problem) => problem.path));
  const reader = new SectionReader(source.positions);
  const file = reader.file(source.value);
  const problems = sortFleetProblems([...source.problems, ...reader.problems.filter((problem) => !refused.has(problem.path))]);
  return problems.length > 0 ? { ok: false, problems: capFleetProblems(problems) } : { ok: true, file };
}

/** Reads each section; collects problems instead of stopping at the first. */
class SectionReader {
  readonly problems: FleetFileProblem[] = [];
  readonly notices: FleetFileNotice[] = [];
  readonly #positions: SourceMap;

  constructor(positions: SourceMap) {
    this.#positions = positions;
  }

  file(value: unknown): FleetFile {
    // An empty file (or only comments) manages nothing.
    const root = value === null ? {} : this.mapping(value, '', 'a mapping of sections (templates, modules, assignments, pools, provider_configs)');
    if (root === undefined) return this.result({});
    for (const key of Object.keys(root)) {
      if ((FLEET_SECTIONS as readonly string[]).includes(key)) continue;
      const why = REFUSED_SECTIONS[key] ?? `is not a fleet.yaml section; the sections are ${FLEET_SECTIONS.join(', ')}`;
      this.problem('unknown-key', childPath('', key), why);
    }
    const section = (name: string) => (root[name] === undefined ? undefined : this.mapping(root[name], name, `a mapping of name → settings (write ${name}: {} for none)`));
    const entries = <T>(name: string, read: (key: string, entry: unknown) => T | undefined): T[] | undefined => {
      const map = section(name);
      return map === undefined ? undefined : Object.entries(map).flatMap(([key, entry]) => this.entry(() => read(key, entry)));
    };
    return this.result({
      modules: entries('modules', (key, entry) => this.module(key, entry)),
      templates: entries('templates', (key, entry) => this.template(key, entry)),
      assignments: entries('assignments', (key, entry) => this.assignment(key, entry)),
      pools: entries('pools', (key, entry) => this.pool(key, entry)),
      providerConfigs: this.providerConfigs(section('provider_configs')),
    });
  }

  /** As the original: named, noted, never applied (they are credentials); their contents are not kept. */
  providerConfigs(section: Record<string, unknown> | undefined): string[] {
    const names = Object.keys(section ?? {}).sort(compareText);
    for (const name of names) {
      const path = childPath('provider_configs', name);
      this.notices.push({ path, ...positionOf(this.#positions, path, 'key'), message: `${path}: read and not applied: fleet.yaml does not manage provider credentials, as in the original` });
    }
    return names;
  }

  module(key: string, value: unknown): Module | undefined {
    const path = childPath('modules', key);
    const raw = this.fields(value, path, MODULE_FIELDS, [], key);
    if (raw === undefined) return undefined;
    return this.checked(() => moduleOf({ ...raw, name: key }), (checkerPath) => path + renamed(stripSubject(checkerPath, 'module'), MODULE_FIELDS));
  }

  template(key: string, value: unknown): Template | undefined {
    const path = childPath('templates', key);
    const raw = this.fields(value, path, { name: 'name', modules: 'modules' }, TEMPLATE_IGNORED, key);
    if (raw === undefined) return undefined;
    if (raw['modules'] === undefined) {
      this.problem('schema', path, 'must list its modules: modules: a mapping of module name → {enabled, priority, config, recommends_override} (modules: {} for none)');
      return undefined;
    }
    const modulesPath = `${path}.modules`;
    const entries = this.mapping(raw['modules'], modulesPath, 'a mapping of module name → {enabled, priority, config, recommends_override}');
    if (entries === undefined) return undefined;
    const names = Object.keys(entries);
    const list: Record<string, unknown>[] = [];
    for (const name of names) {
      const entry = this.fields(entries[name] ?? {}, childPath(modulesPath, name), TEMPLATE_MODULE_FIELDS, [], undefined);
      if (entry === undefined) return undefined;
      list.push({ ...entry, module: name });
    }
    return this.checked(() => templateOf({ name: key, modules: list }), (checkerPath) => templatePath(path, stripSubject(checkerPath, 'template'), names));
  }

  assignment(key: string, value: unknown): Assignment | undefined {
    const path = childPath('assignments', key);
    const parts = key.split(':');
    if (parts.length !== 2) {
      this.problem('schema', path, `the key must be node:module (one ":"), e.g. app-01:nginx (got ${JSON.stringify(key)})`);
      return undefined;
    }
    const raw = this.fields(value ?? {}, path, ASSIGNMENT_FIELDS, ASSIGNMENT_IGNORED, undefined);
    if (raw === undefined) return undefined;
    // The node and module come from the key, so a problem with either points at the key.
    return this.checked(() => assignmentOf({ ...raw, node: parts[0], module: parts[1] }, path), (checkerPath) => checkerPath.replace(/\.(node|module)$/, ''));
  }

  pool(key: string, value: unknown): Pool | undefined {
    const path = childPath('pools', key);
    const raw = this.fields(value, path, POOL_FIELDS, [], key);
    if (raw === undefined) return undefined;
    return this.checked(() => poolOf({ ...raw, name: key }), (checkerPath) => path + renamed(stripSubject(checkerPath, 'pool'), POOL_FIELDS));
  }

  /**
   * The entry's fields under the checker's names. Refuses a field not in `known` (naming the
   * known ones), notes an `ignored` one, and refuses a `name` that differs from the entry's key.
   */
  fields(value: unknown, path: string, known: Readonly<Record<string, string>>, ignored: readonly string[], key: string | undefined): Record<string, unknown> | undefined {
    const raw = this.mapping(value, path, `a mapping of ${Object.keys(known).join(', ')}`);
    if (raw === undefined) return undefined;
    const out: Record<string, unknown> = {};
    for (const [field, entry] of Object.entries(raw)) {
      const fieldPath = childPath(path, field);
      if (ignored.includes(field)) {
        this.notices.push({ path: fieldPath, ...positionOf(this.#positions, fieldPath, 'key'), message: `${fieldPath}: read and not applied (Powernode does not carry ${field})` });
      } else if (known[field] === undefined) {
        this.problem('schema', fieldPath, `unknown field ${JSON.stringify(field)}; known fields: ${Object.keys(known).join(', ')}`);
        return undefined;
      } else if (field === 'name' && entry !== key) {
        this.problem('schema', fieldPath, `must equal the entry's key ${JSON.stringify(key)} when given (got ${JSON.stringify(entry)})`, 'value');
        return undefined;
      } else {
        out[known[field]!] = entry;
      }
    }
    return out;
  }

  /** Runs a catalog check; a CatalogInputError becomes a problem at the YAML path `toPath` gives. */
  checked<T>(check: () => T, toPath: (checkerPath: string) => string): T | undefined {
    try {
      return check();
    } catch (error) {
      if (!(error instanceof CatalogInputError)) throw error;
      const problem = error.message.slice(error.path.length + 2);
      const path = toPath(error.path);
      const fieldPath = unknownFieldPath(path, problem);
      this.problem('schema', fieldPath, problem, fieldPath === path ? 'value' : 'key');
      return undefined;
    }
  }

  mapping(value: unknown, path: string, what: string): Record<string, unknown> | undefined {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    this.problem('schema', path, `must be ${what} (got ${value === null ? 'nothing' : Array.isArray(value) ? 'a list' : typeof value})`, 'value');
    return undefined;
  }

  entry<T>(read: () => T | undefined): T[] {
    const value = read();
    return value === undefined ? [] : [value];
  }

  /** Records a problem; `at` says whether it is about the value at `path` or its key (the entry). */
  problem(kind: FleetFileProblem['kind'], path: string, problem: string, at: 'value' | 'key' = 'key'): void {
    this.problems.push({ kind, path, ...positionOf(this.#positions, path, at), message: `${path === '' ? 'fleet.yaml' : path}: ${problem}` });
  }

  /** The file with each present section sorted by key, as a DesiredCatalog's lists are. */
  result(sections: { modules?: Module[]; templates?: Template[]; assignments?: Assignment[]; pools?: Pool[]; providerConfigs?: readonly string[] }): FleetFile {
    const byName = <T extends { readonly name: string }>(list: T[]) => list.sort((a, b) => compareText(a.name, b.name));
    return {
      ...(sections.modules === undefined ? {} : { modules: byName(sections.modules) }),
      ...(sections.templates === undefined ? {} : { templates: byName(sections.templates) }),
      ...(sections.assignments === undefined ? {} : { assignments: sections.assignments.sort((a, b) => compareText(a.node, b.node) || compareText(a.module, b.module)) }),
      ...(sections.pools === undefined ? {} : { pools: byName(sections.pools) }),
      providerConfigs: sections.providerConfigs ?? [],
      notices: sortNotices(this.notices),
      positions: this.#positions,
    };
  }
}

/**
 * `module "nginx".fileSpec[2]` → `.fileSpec[2]`; `module.name` → `` (the name is the entry's key,
 * so a bad name points at the key); `module` → ``.
 */
function stripSubject(checkerPath: string, subject: string): string {
  const match = new RegExp(`^${subject}(?: "[^"]*")?`).exec(checkerPath);
  const rest = match === null ? '' : checkerPath.slice(match[0].length);
  return rest === '.name' ? '' : rest;
}

/** `.fileSpec[2]` → `.file_spec[2]`: the first segment back under its fleet.yaml name. */
function renamed(rest: string, fields: Readonly<Record<string, string>>): string {
  const match = /^\.([A-Za-z_]+)/.exec(rest);
  if (match === null) return rest;
  const yamlName = Object.keys(fields).find((field) => fields[field] === match[1]);
  return yamlName === undefined ? rest : `.${yamlName}${rest.slice(match[0].length)}`;
}

/** `.modules[3].recommendsOverride.exclude[0]` → `templates.web.modules.<4th name>.recommends_override.exclude[0]`. */
function templatePath(path: string, rest: string, names: readonly string[]): string {
  const match = /^\.modules\[(\d+)\]/.exec(rest);
  if (match === null) return path + rest;
  const entryPath = childPath(`${path}.modules`, names[Number(match[1])] ?? '');
  const inner = renamed(rest.slice(match[0].length), TEMPLATE_MODULE_FIELDS);
  return inner === '.module' ? entryPath : entryPath + inner;
}

/** An `unknown field "x"` problem points at the field itself, not at its object. */
function unknownFieldPath(path: string, problem: string): string {
  const match = /^unknown field "([^"]+)"/.exec(problem);
  return match === null ? path : childPath(path, match[1]!);
}

function sortNotices(notices: readonly FleetFileNotice[]): FleetFileNotice[] {
  return [...notices].sort((a, b) => a.line - b.line || a.column - b.column || compareText(a.message, b.message));
}
