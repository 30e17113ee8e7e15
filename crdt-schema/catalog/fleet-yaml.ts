import { LineCounter, type Node, type Pair, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { compareText } from './order.ts';

/** The bounds on reading a fleet.yaml, checked before and while it is parsed. */
export const FLEET_FILE_LIMITS = {
  /** Bytes of fleet.yaml (UTF-8), checked before parsing: the original's 1 MiB cap. */
  bytesMax: 1024 * 1024,
  /** Nesting of mappings and lists; deeper is refused rather than walked. */
  depthMax: 64,
  /** Problems reported for one file; past this the list ends with a note of how many more. */
  problemsMax: 200,
} as const;

/** Where a key or value starts in the file: 1-based line and column. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/**
 * What is wrong with a fleet.yaml, or with applying it: too-large (over the cap), syntax (not
 * YAML), duplicate-key, alias (anchors and aliases are refused), tag (explicit tags are refused),
 * unknown-key (a top-level section this release does not read), schema (an entry breaks the
 * catalog's rules), reference (an entry names something the catalog would not hold), composition
 * (a template that would not compose).
 */
export type FleetProblemKind = 'too-large' | 'syntax' | 'duplicate-key' | 'alias' | 'tag' | 'unknown-key' | 'schema' | 'reference' | 'composition';

/** One problem, with where it is. The message starts with the path and says what is allowed. */
export interface FleetFileProblem extends SourcePosition {
  readonly kind: FleetProblemKind;
  /** The YAML path, e.g. `modules.nginx.manifest.dependencies.requires[2]`; `` for the whole file. */
  readonly path: string;
  readonly message: string;
  /** For a duplicate key: where the key first appears (line and column are the repeat). */
  readonly firstAt?: SourcePosition;
}

/**
 * Where each path's key and value start in the file, as offsets (turned into lines and columns
 * only for what is reported, which keeps reading a large file cheap), and where each line starts.
 */
export interface SourceMap {
  readonly keys: ReadonlyMap<string, number>;
  readonly values: ReadonlyMap<string, number>;
  /** Offset of the start of each line, ascending; empty for a file that was not read from text. */
  readonly lineStarts: readonly number[];
}

/** A YAML document read into plain values (objects, lists, strings, numbers, booleans, null). */
export interface YamlSource {
  readonly value: unknown;
  readonly positions: SourceMap;
  readonly problems: readonly FleetFileProblem[];
}

const START: SourcePosition = { line: 1, column: 1 };
const SIMPLE_KEY = /^[A-Za-z0-9_:-]+$/;

/**
 * The path of `key` under `parent`: `parent.key`, or `parent["key"]` when the key holds
 * anything but letters, digits, `_`, `-` and `:` (a dot in a host name would read as nesting).
 */
export function childPath(parent: string, key: string): string {
  if (!SIMPLE_KEY.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

/**
 * Reads YAML text in safe mode: YAML 1.2 core schema only (no custom or explicit tags, no merge
 * keys), keys read as strings, no anchors or aliases (so no alias explosion), one document.
 * Values are read from the syntax tree by {@link Walker}, never with the library's `toJS`, so an
 * alias is never expanded (its `maxAliasCount` guard is not needed: an alias is refused).
 * Every syntax error is reported; when there is one, no value is returned. Duplicate keys are
 * reported with both positions. The caller checks the size cap first.
 */
export function readYaml(text: string): YamlSource {
  const lines = new LineCounter();
  const document = parseDocument(text, {
    lineCounter: lines, version: '1.2', schema: 'core', merge: false, stringKeys: true, uniqueKeys: false, prettyErrors: false,
  });
  // Unresolved tags are reported by the walk below, as tags, once.
  const parserErrors = [...document.errors, ...document.warnings.filter((warning) => warning.code !== 'TAG_RESOLVE_FAILED')];
  if (parserErrors.length > 0) {
    const problems = parserErrors.map((error) => ({ kind: 'syntax' as const, path: '', ...lineAndColumn(lines.lineStarts, error.pos[0]), message: `YAML syntax: ${firstLine(error.message)}` }));
    return { value: undefined, positions: { keys: new Map(), values: new Map(), lineStarts: lines.lineStarts }, problems: sortFleetProblems(problems) };
  }
  const walker = new Walker(lines.lineStarts);
  const value = walker.plain(document.contents, '', 0, 0);
  return { value, positions: { keys: walker.keys, values: walker.values, lineStarts: lines.lineStarts }, problems: sortFleetProblems(walker.problems) };
}

/** Turns the parsed nodes into plain values, noting positions and what safe mode refuses. */
class Walker {
  readonly keys = new Map<string, number>();
  readonly values = new Map<string, number>();
  readonly problems: FleetFileProblem[] = [];
  readonly #lineStarts: readonly number[];

  constructor(lineStarts: readonly number[]) {
    this.#lineStarts = lineStarts;
  }

  plain(node: Node | null, path: string, depth: number, fallback: number): unknown {
    if (node === null) {
      this.values.set(path, fallback);
      return null;
    }
    const offset = node.range ? node.range[0] : fallback;
    this.values.set(path, offset);
    const position = (): SourcePosition => lineAndColumn(this.#lineStarts, offset);
    if (isAlias(node) || ('anchor' in node && node.anchor)) {
      this.problems.push({ kind: 'alias', path, ...position(), message: `${label(path)}: anchors and aliases are not allowed in fleet.yaml; write the value out` });
      return null;
    }
    if ('tag' in node && typeof node.tag === 'string') {
      this.problems.push({ kind: 'tag', path, ...position(), message: `${label(path)}: explicit tags (${node.tag}) are not allowed in fleet.yaml; write a plain value` });
      return null;
    }
    if (depth >= FLEET_FILE_LIMITS.depthMax && (isMap(node) || isSeq(node))) {
      this.problems.push({ kind: 'syntax', path, ...position(), message: `${label(path)}: nests deeper than ${FLEET_FILE_LIMITS.depthMax} levels` });
      return null;
    }
    if (isScalar(node)) return node.value;
    if (isSeq(node)) return node.items.map((item, index) => this.plain(item as Node | null, `${path}[${index}]`, depth + 1, offset));
    if (isMap(node)) return this.mapping(node.items as Pair<Node | null, Node | null>[], path, depth, offset);
    this.problems.push({ kind: 'syntax', path, ...position(), message: `${label(path)}: is not a value fleet.yaml reads` });
    return null;
  }

  mapping(pairs: readonly Pair<Node | null, Node | null>[], path: string, depth: number, offset: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const seen = new Map<string, number>();
    for (const pair of pairs) {
      const keyNode = pair.key;
      const key = isScalar(keyNode) ? String(keyNode.value) : '';
      const keyAt = keyNode?.range ? keyNode.range[0] : offset;
      const keyPath = childPath(path, key);
      const first = seen.get(key);
      if (first !== undefined) {
        const firstAt = lineAndColumn(this.#lineStarts, first);
        this.problems.push({ kind: 'duplicate-key', path: keyPath, ...lineAndColumn(this.#lineStarts, keyAt), firstAt, message: `${keyPath}: duplicate key ${JSON.stringify(key)} (first at line ${firstAt.line}, column ${firstAt.column}); each key may appear once` });
        continue;
      }
      seen.set(key, keyAt);
      this.keys.set(keyPath, keyAt);
      // Defined, not assigned: a `__proto__` key becomes a field (which the checks refuse), never a prototype.
      Object.defineProperty(out, key, { value: this.plain(pair.value, keyPath, depth + 1, keyAt), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}

/** Problems in file order (line, column), then by message. */
export function sortFleetProblems<T extends FleetFileProblem>(problems: readonly T[]): T[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column || compareText(a.message, b.message));
}

/**
 * Where `path` is: its value (for a problem with the value) or its key (for a problem with the
 * key or the entry as a whole), else the other, else the nearest enclosing path that is in the file.
 */
export function positionOf(positions: SourceMap, path: string, prefer: 'value' | 'key' = 'value'): SourcePosition {
  const [first, second] = prefer === 'value' ? [positions.values, positions.keys] : [positions.keys, positions.values];
  for (let current = path; ; current = parentPath(current)) {
    const found = first.get(current) ?? second.get(current);
    if (found !== undefined) return lineAndColumn(positions.lineStarts, found);
    if (current === '') return START;
  }
}

/** The 1-based line and column of `offset`, by binary search over the line starts. */
function lineAndColumn(lineStarts: readonly number[], offset: number): SourcePosition {
  let low = 0;
  let high = lineStarts.length - 1;
  if (high < 0) return START;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (lineStarts[middle]! <= offset) low = middle;
    else high = middle - 1;
  }
  return { line: low + 1, column: offset - lineStarts[low]! + 1 };
}

/** `a.b[2]` → `a.b`; `a["x.y"]` → `a`; `a` → ``. */
function parentPath(path: string): string {
  if (path.endsWith(']')) {
    const open = path.endsWith('"]') ? path.lastIndexOf('["') : path.lastIndexOf('[');
    return path.slice(0, Math.max(0, open));
  }
  const dot = path.lastIndexOf('.');
  return dot < 0 ? '' : path.slice(0, dot);
}

/** At most `problemsMax` problems; the last one kept says how many more there were. */
export function capFleetProblems<T extends FleetFileProblem>(problems: readonly T[]): T[] {
  const max = FLEET_FILE_LIMITS.problemsMax;
  if (problems.length <= max) return [...problems];
  const last = problems[max - 1]!;
  return [...problems.slice(0, max - 1), { ...last, message: `${last.message} (and ${problems.length - max + 1} more problems not listed)` }];
}

/** `fleet.yaml:3:5: modules.nginx.priority: must be …`, for a terminal. */
export function formatFleetProblem(problem: FleetFileProblem, fileName = 'fleet.yaml'): string {
  return `${fileName}:${problem.line}:${problem.column}: ${problem.message}`;
}

function label(path: string): string {
  return path === '' ? 'the file' : path;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
