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
  const value = readYamlFast(text);
  if (value === NOT_FAST) return readYamlFully(text);
  return { value, positions: lazyPositions(text), problems: [] };
}

/**
 * Where things are in a file the fast path read: found (by the full reader) only when something
 * asks, which a clean file's check and diff never do.
 */
function lazyPositions(text: string): SourceMap {
  let read: SourceMap | undefined;
  const positions = (): SourceMap => (read ??= positionsFast(text) ?? readYamlFully(text).positions);
  return {
    get keys() { return positions().keys; },
    get values() { return positions().values; },
    get lineStarts() { return positions().lineStarts; },
  };
}

/** {@link readYaml} by the `yaml` library and {@link Walker}, for every input; the reference the fast path is tested against. */
export function readYamlFully(text: string): YamlSource {
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

/** Returned by {@link readYamlFast} for text outside what it reads: the full reader reads it instead. */
const NOT_FAST: unique symbol = Symbol('not-fast');

/** A line the fast path reads: printable ASCII (no tabs, no carriage return, no other Unicode). */
const FAST_LINE = /^[\x20-\x7e]*$/;
/** A comment line may hold other printable text, bar line and paragraph separators, byte order marks and surrogates. */
const FAST_COMMENT = /^[\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*$/;
/** A plain scalar may start with these (YAML indicators may not, nor `-` but before a plain character, checked apart). */
const PLAIN_START = /^[A-Za-z0-9_.\/~+(=$^<;]$/;
/** Characters that make a block-context key more than a simple name: left to the full reader. */
const KEY_AWKWARD = /[\[\]{},#&*!|>'"%@`]/;
const DEPTH_FAST_MAX = 48;
/** Longest key (to its `:`) the fast path reads; the `yaml` library's limit is 1024. */
const KEY_CHARS_FAST_MAX = 1000;
const ESCAPES: Readonly<Record<string, string>> = {
  '0': '\0', a: '\x07', b: '\b', e: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029', ' ': ' ', '"': '"', '/': '/', '\\': '\\',
};

/**
 * The fast path of {@link readYaml}, for the clean file a fleet.yaml usually is: block mappings
 * and sequences, one-line flow collections, one-line plain and quoted scalars, comments, in
 * printable ASCII. It reads exactly what the full reader would give for such text, and gives up
 * ({@link NOT_FAST}) at anything else — any other construct, anything the full reader would
 * report (a duplicate key, an anchor, a tag, a syntax error), anything deeper than
 * {@link DEPTH_FAST_MAX} — so that the full reader reads it (and reports what it finds).
 */
export function readYamlFast(text: string): unknown {
  try {
    return new FastReader(text, undefined).document();
  } catch (error) {
    if (error === NOT_FAST) return NOT_FAST;
    throw error;
  }
}
export { NOT_FAST };

/**
 * The positions {@link Walker} notes, for text the fast path reads, found by reading it again
 * with paths and offsets kept; undefined (so the full reader finds them) for text it does not
 * read, or that holds an empty value (whose position the `yaml` library works out its own way).
 */
export function positionsFast(text: string): SourceMap | undefined {
  const recorder: Recorder = { keys: new Map(), values: new Map() };
  try {
    new FastReader(text, recorder).document();
  } catch (error) {
    if (error === NOT_FAST) return undefined;
    throw error;
  }
  const lineStarts = [0];
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lineStarts.push(at + 1);
  return { ...recorder, lineStarts };
}

/** Where the fast path notes each path's key and value (offsets), when asked for positions. */
interface Recorder {
  readonly keys: Map<string, number>;
  readonly values: Map<string, number>;
}

function giveUp(): never {
  throw NOT_FAST;
}

/** Reads the lines that hold content (blank and comment-only lines dropped) by indentation. */
class FastReader {
  readonly #indents: number[] = [];
  readonly #contents: string[] = [];
  /** Offset in the text of each content line's first character (kept only for positions). */
  readonly #starts: number[] = [];
  readonly #recorder: Recorder | undefined;
  #at = 0;

  constructor(text: string, recorder: Recorder | undefined) {
    this.#recorder = recorder;
    let lineStart = 0;
    for (const line of text.split('\n')) {
      const start = lineStart;
      lineStart += line.length + 1;
      let indent = 0;
      while (line.charCodeAt(indent) === 32) indent++;
      if (indent === line.length) continue;
      if (line.charCodeAt(indent) === 35 /* # */) {
        if (!FAST_COMMENT.test(line)) giveUp();
        continue;
      }
      if (!FAST_LINE.test(line)) giveUp();
      // Directives and document markers are the full reader's.
      if (indent === 0 && (line.startsWith('---') || line.startsWith('...') || line.startsWith('%'))) giveUp();
      this.#indents.push(indent);
      this.#contents.push(line.slice(indent));
      if (recorder !== undefined) this.#starts.push(start + indent);
    }
  }

  document(): unknown {
    if (this.#contents.length === 0) {
      this.#recorder?.values.set('', 0);
      return null;
    }
    const value = this.block(this.#indents[0]!, 0, '');
    if (this.#at !== this.#contents.length) giveUp();
    return value;
  }

  /** The block collection whose first line is the current one, at indent `indent`. */
  block(indent: number, depth: number, path: string): unknown {
    if (depth >= DEPTH_FAST_MAX) giveUp();
    this.#recorder?.values.set(path, this.#starts[this.#at]!);
    return isSeqItem(this.#contents[this.#at]!) ? this.sequence(indent, depth, path) : this.mapping(indent, depth, path);
  }

  mapping(indent: number, depth: number, path: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.#at < this.#contents.length && this.#indents[this.#at] === indent) {
      const line = this.#at;
      const content = this.#contents[line]!;
      if (isSeqItem(content)) giveUp();
      const { key, rest, restAt } = blockKey(content);
      if (Object.hasOwn(out, key)) giveUp();
      let keyPath = '';
      if (this.#recorder !== undefined) {
        keyPath = childPath(path, key);
        this.#recorder.keys.set(keyPath, this.#starts[line]!);
      }
      this.#at++;
      setField(out, key, rest === '' ? this.nested(indent, depth, true, keyPath) : this.inline(rest, line, restAt, indent, depth, keyPath));
    }
    this.end(indent);
    return out;
  }

  sequence(indent: number, depth: number, path: string): unknown[] {
    const out: unknown[] = [];
    while (this.#at < this.#contents.length && this.#indents[this.#at] === indent && isSeqItem(this.#contents[this.#at]!)) {
      const line = this.#at;
      const content = this.#contents[line]!;
      const itemPath = this.#recorder === undefined ? '' : `${path}[${out.length}]`;
      let start = 1;
      while (content.charCodeAt(start) === 32) start++;
      const rest = content.slice(start);
      if (rest === '' || rest.startsWith('#')) {
        this.#at++;
        out.push(this.nested(indent, depth, false, itemPath));
      } else if (isSeqItem(rest)) {
        giveUp();
      } else if (isCompactKey(rest)) {
        // `- key: value`: a mapping whose lines are indented as its first key.
        this.#indents[line] = indent + start;
        this.#contents[line] = rest;
        if (this.#recorder !== undefined) {
          this.#starts[line]! += start;
          this.#recorder.values.set(itemPath, this.#starts[line]!);
        }
        out.push(this.mapping(indent + start, depth + 1, itemPath));
      } else {
        this.#at++;
        out.push(this.inline(rest, line, start, indent, depth, itemPath));
      }
    }
    this.end(indent);
    return out;
  }

  /** After `key:` or `-` with nothing after it: a deeper block, a sequence at the key's indent, or null. */
  nested(indent: number, depth: number, underKey: boolean, path: string): unknown {
    const next = this.#at < this.#contents.length ? this.#indents[this.#at]! : -1;
    if (next > indent) return this.block(next, depth + 1, path);
    if (underKey && next === indent && isSeqItem(this.#contents[this.#at]!)) return this.block(indent, depth + 1, path);
    // An empty value: where the `yaml` library places it is the full reader's to say.
    if (this.#recorder !== undefined) giveUp();
    return null;
  }

  /** A value on the line of its key or dash (`rest`, at `restAt` of line `line`); nothing may continue it on deeper lines. */
  inline(rest: string, line: number, restAt: number, indent: number, depth: number, path: string): unknown {
    let value: unknown;
    let after: number;
    const first = rest.charCodeAt(0);
    if (first === 123 /* { */ || first === 91 /* [ */) {
      [value, after] = flowValue(rest, 0, depth + 1, this.#recorder === undefined ? undefined : { recorder: this.#recorder, base: this.#starts[line]! + restAt, path });
    } else {
      this.#recorder?.values.set(path, this.#starts[line]! + restAt);
      if (first === 34 /* " */ || first === 39 /* ' */) {
        [value, after] = quoted(rest, 0);
      } else {
        value = resolvePlain(blockPlain(rest));
        after = rest.length;
      }
    }
    if (!isLineEnd(rest, after)) giveUp();
    if (this.#at < this.#contents.length && this.#indents[this.#at]! > indent) giveUp();
    return value;
  }

  /** A collection ends at a shallower line; one between its indent and its parent's is not read here. */
  end(indent: number): void {
    if (this.#at < this.#contents.length && this.#indents[this.#at]! > indent) giveUp();
  }
}

/** Where a flow value's positions go: `base` is the offset in the file of its text's start. */
interface FlowPositions {
  readonly recorder: Recorder;
  readonly base: number;
  readonly path: string;
}

/**
 * `out[key] = value` as {@link Walker} defines it: an own, enumerable, writable field. Assigned
 * (quicker) for every key but `__proto__`, which assigning would make the prototype.
 */
function setField(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

function isSeqItem(content: string): boolean {
  return content.charCodeAt(0) === 45 /* - */ && (content.length === 1 || content.charCodeAt(1) === 32);
}

/** Nothing but spaces and perhaps a comment from `at` on. */
function isLineEnd(text: string, at: number): boolean {
  if (at >= text.length) return true;
  if (text.charCodeAt(at) !== 32) return false;
  while (text.charCodeAt(at) === 32) at++;
  return at >= text.length || text.charCodeAt(at) === 35;
}

function startsPlain(text: string, at: number): boolean {
  const first = text[at] ?? '';
  if (PLAIN_START.test(first)) return true;
  return first === '-' && PLAIN_START.test(text[at + 1] ?? '');
}

/** Whether a sequence item's text is `key: …` (a compact mapping) rather than a scalar. */
function isCompactKey(rest: string): boolean {
  const first = rest.charCodeAt(0);
  if (first === 34 || first === 39) {
    const [, after] = quoted(rest, 0);
    return rest.charCodeAt(after) === 58 /* : */;
  }
  if (first === 123 || first === 91) return false;
  return keyEnd(rest) >= 0;
}

/** Where a plain block key's `:` is (followed by a space or the end of the line), or -1. */
function keyEnd(content: string): number {
  for (let at = content.indexOf(':'); at >= 0; at = content.indexOf(':', at + 1)) {
    if (at + 1 === content.length || content.charCodeAt(at + 1) === 32) return at;
  }
  return -1;
}

/** `key: rest` → the key and what follows `: ` (`` for nothing or a comment), which starts at `restAt`. */
function blockKey(content: string): { key: string; rest: string; restAt: number } {
  let key: string;
  let colon: number;
  const first = content.charCodeAt(0);
  if (first === 34 || first === 39) {
    let value: unknown;
    [value, colon] = quoted(content, 0);
    key = value as string;
    if (content.charCodeAt(colon) !== 58) giveUp();
  } else {
    colon = keyEnd(content);
    if (colon <= 0 || !startsPlain(content, 0)) giveUp();
    key = content.slice(0, colon).trimEnd();
    if (KEY_AWKWARD.test(key) || key === '<<') giveUp();
  }
  // The `yaml` library refuses an implicit key whose `:` is more than 1024 characters on.
  if (colon > KEY_CHARS_FAST_MAX) giveUp();
  const after = colon + 1;
  if (after < content.length && content.charCodeAt(after) !== 32) giveUp();
  let start = after;
  while (content.charCodeAt(start) === 32) start++;
  const rest = start >= content.length || content.charCodeAt(start) === 35 ? '' : content.slice(start);
  return { key, rest, restAt: start };
}

/** A one-line plain scalar in block context, its comment and trailing spaces dropped. */
function blockPlain(rest: string): string {
  if (!startsPlain(rest, 0)) giveUp();
  const comment = rest.indexOf(' #');
  const text = (comment < 0 ? rest : rest.slice(0, comment)).trimEnd();
  if (text.includes(': ') || text.endsWith(':')) giveUp();
  return text;
}

/** A one-line quoted scalar starting at `at`: its value and where it ends. */
function quoted(text: string, at: number): [string, number] {
  const quote = text[at];
  let out = '';
  for (let index = at + 1; index < text.length; index++) {
    const char = text[index]!;
    if (quote === "'") {
      if (char !== "'") out += char;
      else if (text[index + 1] === "'") out += text[++index];
      else return [out, index + 1];
    } else if (char === '"') {
      return [out, index + 1];
    } else if (char === '\\') {
      const next = text[++index] ?? '';
      const escape = ESCAPES[next];
      if (escape !== undefined) {
        out += escape;
      } else if (next === 'x' || next === 'u' || next === 'U') {
        const length = next === 'x' ? 2 : next === 'u' ? 4 : 8;
        const digits = text.slice(index + 1, index + 1 + length);
        if (!/^[0-9a-fA-F]+$/.test(digits) || digits.length !== length) giveUp();
        const code = parseInt(digits, 16);
        if (code > 0x10ffff) giveUp();
        out += String.fromCodePoint(code);
        index += length;
      } else {
        giveUp();
      }
    } else {
      out += char;
    }
  }
  return giveUp();
}

/** A one-line flow collection or scalar at `at` inside `[…]` or `{…}`: its value and where it ends. */
function flowValue(text: string, at: number, depth: number, positions: FlowPositions | undefined): [unknown, number] {
  positions?.recorder.values.set(positions.path, positions.base + at);
  const first = text.charCodeAt(at);
  if (first === 123 || first === 91) {
    if (depth >= DEPTH_FAST_MAX) giveUp();
    return first === 123 ? flowMap(text, at, depth, positions) : flowSeq(text, at, depth, positions);
  }
  if (first === 34 || first === 39) return quoted(text, at);
  if (!startsPlain(text, at)) giveUp();
  let end = at;
  for (; end < text.length; end++) {
    const char = text.charCodeAt(end);
    if (char === 44 /* , */ || char === 93 /* ] */ || char === 125 /* } */) break;
    if (char === 91 || char === 123) giveUp();
    if (char === 58 /* : */ && (end + 1 === text.length || ' ,[]{}'.includes(text[end + 1]!))) giveUp();
    if (char === 35 /* # */ && text.charCodeAt(end - 1) === 32) giveUp();
  }
  return [resolvePlain(text.slice(at, end).trimEnd()), end];
}

function skipSpaces(text: string, at: number): number {
  while (text.charCodeAt(at) === 32) at++;
  return at;
}

function flowMap(text: string, at: number, depth: number, positions: FlowPositions | undefined): [Record<string, unknown>, number] {
  const out: Record<string, unknown> = {};
  at = skipSpaces(text, at + 1);
  if (text.charCodeAt(at) === 125) return [out, at + 1];
  for (;;) {
    let key: string;
    const keyAt = at;
    const first = text.charCodeAt(at);
    if (first === 34 || first === 39) {
      [key, at] = quoted(text, at);
      if (text.charCodeAt(at) !== 58) giveUp();
    } else {
      if (!startsPlain(text, at)) giveUp();
      const colon = text.indexOf(': ', at);
      if (colon < 0) giveUp();
      key = text.slice(at, colon).trimEnd();
      if (KEY_AWKWARD.test(key) || key === '<<') giveUp();
      at = colon;
    }
    if (text.charCodeAt(at + 1) !== 32 || at - keyAt > KEY_CHARS_FAST_MAX) giveUp();
    at = skipSpaces(text, at + 1);
    if (Object.hasOwn(out, key)) giveUp();
    let inner: FlowPositions | undefined;
    if (positions !== undefined) {
      inner = { ...positions, path: childPath(positions.path, key) };
      positions.recorder.keys.set(inner.path, positions.base + keyAt);
    }
    let value: unknown;
    [value, at] = flowValue(text, at, depth + 1, inner);
    setField(out, key, value);
    at = skipSpaces(text, at);
    const next = text.charCodeAt(at);
    if (next === 125) return [out, at + 1];
    if (next !== 44) giveUp();
    at = skipSpaces(text, at + 1);
    if (text.charCodeAt(at) === 125 || text.charCodeAt(at) === 44) giveUp();
  }
}

function flowSeq(text: string, at: number, depth: number, positions: FlowPositions | undefined): [unknown[], number] {
  const out: unknown[] = [];
  at = skipSpaces(text, at + 1);
  if (text.charCodeAt(at) === 93) return [out, at + 1];
  for (;;) {
    let value: unknown;
    const first = text.charCodeAt(at);
    [value, at] = flowValue(text, at, depth + 1, positions === undefined ? undefined : { ...positions, path: `${positions.path}[${out.length}]` });
    at = skipSpaces(text, at);
    // `[a: b]` is a mapping in a list, `["a": b]` too: the full reader's.
    if (text.charCodeAt(at) === 58 && (first === 34 || first === 39)) giveUp();
    out.push(value);
    const next = text.charCodeAt(at);
    if (next === 93) return [out, at + 1];
    if (next !== 44) giveUp();
    at = skipSpaces(text, at + 1);
    if (text.charCodeAt(at) === 93 || text.charCodeAt(at) === 44) giveUp();
  }
}

const NULL_PLAIN = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL_PLAIN = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const OCT_PLAIN = /^0o[0-7]+$/;
const INT_PLAIN = /^[-+]?[0-9]+$/;
const HEX_PLAIN = /^0x[0-9a-fA-F]+$/;
const NAN_PLAIN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const EXP_PLAIN = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT_PLAIN = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;
/** Only these characters can start a plain scalar that is not a string in the core schema. */
const NON_STRING_START = /^[-+.0-9~nNtTfF]/;

/** A plain scalar as the YAML 1.2 core schema resolves it (the `yaml` library's tests and resolvers, in its order). */
function resolvePlain(text: string): unknown {
  if (!NON_STRING_START.test(text)) return text;
  if (NULL_PLAIN.test(text)) return null;
  if (BOOL_PLAIN.test(text)) return text[0] === 't' || text[0] === 'T';
  if (OCT_PLAIN.test(text)) return parseInt(text.substring(2), 8);
  if (INT_PLAIN.test(text)) return parseInt(text, 10);
  if (HEX_PLAIN.test(text)) return parseInt(text.substring(2), 16);
  if (NAN_PLAIN.test(text)) return text.slice(-3).toLowerCase() === 'nan' ? NaN : text[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (EXP_PLAIN.test(text) || FLOAT_PLAIN.test(text)) return parseFloat(text);
  return text;
}
