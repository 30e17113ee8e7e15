import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOT_FAST, type SourceMap, type YamlSource, positionsFast, readYaml, readYamlFast, readYamlFully } from '../../crdt-schema/catalog/fleet-yaml.ts';
import { EMPTY_DESIRED_CATALOG, assignmentOf, exportFleetFile, moduleOf, poolOf, templateOf } from '../../crdt-schema/index.ts';

/** Everything a reader gives, with the positions as plain lists (read through, so lazy ones are found). */
function everything(source: YamlSource): unknown {
  return { value: source.value, problems: source.problems, ...listed(source.positions) };
}

/** Positions as lists, in the order they were noted. */
function listed(positions: SourceMap): { keys: [string, number][]; values: [string, number][]; lineStarts: number[] } {
  return { keys: [...positions.keys], values: [...positions.values], lineStarts: [...positions.lineStarts] };
}

/** How many texts the fast path found the positions of itself (the rest: the full reader). */
let positionsFound = 0;

/** The fast path either gives up or reads exactly what the full reader reads; readYaml is the full reader's result either way. */
function expectSameAsFull(text: string): boolean {
  const full = readYamlFully(text);
  const fast = readYamlFast(text);
  if (fast !== NOT_FAST) {
    expect(full.problems, `the fast path read text the full reader reports problems in:\n${text}`).toEqual([]);
    // isDeepStrictEqual tells -0 from 0, matches NaN and compares prototypes (not a `constructor` key); key order is checked apart.
    expect(isDeepStrictEqual(fast, full.value), `${text}\n${JSON.stringify(fast)}\n${JSON.stringify(full.value)}`).toBe(true);
    expect(keyOrders(fast), text).toEqual(keyOrders(full.value));
    const positions = positionsFast(text);
    if (positions !== undefined) {
      positionsFound++;
      expect(listed(positions), text).toEqual(listed(full.positions));
    }
  } else {
    expect(positionsFast(text), text).toBeUndefined();
  }
  expect(isDeepStrictEqual(everything(readYaml(text)), everything(full)), text).toBe(true);
  return fast !== NOT_FAST;
}

function keyOrders(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(keyOrders);
  if (typeof value === 'object' && value !== null) return Object.entries(value).map(([key, entry]) => [key, keyOrders(entry)]);
  return typeof value === 'number' && Object.is(value, -0) ? '-0' : value;
}

/** Scalars and keys the fast path reads (or gives up on only in some places)… */
const SCALARS = [
  'a', 'web', 'node-01:nginx', 'a b', 'a  b', 'a#b', 'a #c', '1', '-0', '+5', '007', '0o17', '0o8', '0x1F', '0X1F', '0xg', '1e3', '1.5e-3', '-1E+2', '.5', '1.', '1.50', '1_000',
  '9007199254740993', '.inf', '-.Inf', '+.INF', '.NaN', '.nan', '.NAN', 'nan', 'null', 'Null', 'NULL', 'nULL', '~', '~a', 'true', 'True', 'TRUE', 'tRue', 'false', 'FALSE', 'yes', 'on', 'n',
  '...', '.', '-a', '-1a', '<<', '__proto__', 'http://x:80/y', 'a:b', 'x[1]', 'a"b', "a'b", 'a!b', 'a&b', 'a*b', 'a|b', 'a>b', 'a%b', 'a@b', 'a`b', 'a?b', '/etc/**', '/opt/a b/*',
  'a\\b', '(x)', '=x', '$HOME', '^x', ';x', '0b101', '1:20', '2001-01-01',
  '"a"', '"a\\"b"', '"\\x41\\u00e9\\U0001F600"', "'it''s'", "''", '""', '"a #b"', '"\\\\"', '"\\N\\_\\L\\P\\0\\a\\e\\ \\/"', '"a:b"', '" x "', '"*.pyc"', "'- x'", '"a: b"',
];
/** …and ones it leaves to the full reader (some of them the full reader refuses). */
const AWKWARD_SCALARS = [
  'a # c: d', 'a,b', 'a]', 'a}', '{a}', '---', '- a', '-', '--', 'a: b', 'a:', '[x', '*x', '&x a', '!t a', '!!str 1', '|', '|-\n  block', '>', '%x', '@x', '`x', '?x', '? x', ':x', ': x',
  '*.pyc', 'é', '"\\q"', '"\\x4"', '"\\uD800"', '"\\U00110000"', '"unterminated', "'a", '"a" b', "'a'#c", '"a" #c', '"multi\n  line"', "'multi\n  line'", 'plain\n  continued',
];
const KEYS = [
  'a', 'b', 'c', 'd', 'e', 'name', 'modules', 'node-0001:mod-01', 'a b', 'a:b', '1', '01', 'true', '~', 'null', '-a', '__proto__', 'constructor', '"q k"', "'s k'", '"a.b"', '""', "''",
  '.inf', '0x10', 'a ', '"\\u00e9"', '"a\\"b"', "'a''b'", '"k: v"', '"- k"',
];
const AWKWARD_KEYS = ['<<', 'a#b', 'a[b]', 'a,b', '? a', '&x k', '*x', '!t k', 'x y: z', '-', ':', 'é', '"k": ', '- k'];
const SNIPPETS = [': ', ':', ' #', '#', '-', '- ', '&a ', '*a', '!t ', '"', "'", '{', '}', '[', ']', ',', '\n', '  ', '\t', '---\n', '...\n', '? ', '|', '>', '%', '@', '§', 'é', '\r\n', '\u2028', '\ufeff', '\0', 'x'];
const mostly = <T>(clean: readonly T[], awkward: readonly T[]) => fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...clean) }, { weight: 1, arbitrary: fc.constantFrom(...awkward) });

/** A mapping's entries: now and then with a key twice. */
function entries(values: fc.Arbitrary<Tree>, maxLength: number): fc.Arbitrary<[string, Tree][]> {
  const entry = fc.tuple(mostly(KEYS, AWKWARD_KEYS), values);
  return fc.oneof({ weight: 6, arbitrary: fc.uniqueArray(entry, { maxLength, selector: ([key]) => key }) }, { weight: 1, arbitrary: fc.array(entry, { maxLength }) });
}

type Tree = { s: string } | { map: [string, Tree][]; flow: boolean; step: number; sameIndentSeq: boolean } | { seq: Tree[]; flow: boolean; step: number };

const trees = fc.letrec<{ tree: Tree; scalar: Tree; map: Tree; seq: Tree }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('scalar'), tie('map'), tie('seq')),
  scalar: mostly(SCALARS, AWKWARD_SCALARS).map((s) => ({ s })),
  map: fc.record({ map: entries(tie('tree'), 4), flow: fc.boolean(), step: fc.integer({ min: 1, max: 4 }), sameIndentSeq: fc.boolean() }),
  seq: fc.record({ seq: fc.array(tie('tree'), { maxLength: 4 }), flow: fc.boolean(), step: fc.integer({ min: 1, max: 4 }) }),
})).tree;

/** Flow style: `{ k: v, … }`, `[a, …]`. */
function flow(tree: Tree): string {
  if ('s' in tree) return tree.s;
  if ('map' in tree) return tree.map.length === 0 ? '{}' : `{ ${tree.map.map(([key, value]) => `${key}: ${flow(value)}`).join(', ')} }`;
  return tree.seq.length === 0 ? '[]' : `[${tree.seq.map(flow).join(', ')}]`;
}

/** The lines of a block node at `indent`; a scalar or flow collection is one inline value. */
function block(tree: Tree, indent: number): string[] {
  const pad = ' '.repeat(indent);
  if ('map' in tree) {
    if (tree.flow || tree.map.length === 0) return [pad + flow(tree)];
    return tree.map.flatMap(([key, value]) => {
      if (inline(value)) return [`${pad}${key}: ${flow(value)}`];
      const sameIndent = 'seq' in value && tree.sameIndentSeq;
      return [`${pad}${key}:`, ...block(value, sameIndent ? indent : indent + tree.step)];
    });
  }
  if ('seq' in tree) {
    if (tree.flow || tree.seq.length === 0) return [pad + flow(tree)];
    return tree.seq.flatMap((item) => {
      if (inline(item)) return [`${pad}- ${flow(item)}`];
      const lines = block(item, indent + tree.step);
      // A mapping starts on the dash's line when the step leaves room for `- `.
      if ('map' in item && tree.step >= 2) return [`${pad}-${' '.repeat(tree.step - 1)}${lines[0]!.trimStart()}`, ...lines.slice(1)];
      return [`${pad}-`, ...lines];
    });
  }
  return [pad + tree.s];
}

function inline(tree: Tree): boolean {
  return 's' in tree || ('map' in tree ? tree.flow || tree.map.length === 0 : tree.flow || tree.seq.length === 0);
}

/** A fleet.yaml is a block mapping: mostly that, now and then anything. */
const roots = fc.oneof(
  { weight: 6, arbitrary: fc.record({ map: entries(trees, 5), flow: fc.constant(false), step: fc.integer({ min: 1, max: 4 }), sameIndentSeq: fc.boolean() }) },
  { weight: 1, arbitrary: trees },
);

const documents = fc.record({
  tree: roots,
  indent: fc.integer({ min: 0, max: 2 }),
  comments: fc.array(fc.tuple(fc.nat(), fc.constantFrom('# a comment', '  # indented', '', '   ', '# §é ünïcode', '#x: y')), { maxLength: 3 }),
  mutations: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(), fc.constantFrom(...SNIPPETS), fc.boolean()), { minLength: 1, maxLength: 2 }) }),
}).map(({ tree, indent, comments, mutations }) => {
  const lines = block(tree, indent);
  for (const [at, comment] of comments) lines.splice(at % (lines.length + 1), 0, comment);
  let text = `${lines.join('\n')}\n`;
  for (const [at, snippet, replace] of mutations) {
    const where = at % (text.length + 1);
    text = text.slice(0, where) + snippet + text.slice(replace ? where + snippet.length : where);
  }
  return text;
});

describe('the fast path of reading fleet.yaml', () => {
  it('reads what the full reader reads, or leaves the text to it (positions, problems and all)', () => {
    let fast = 0;
    let runs = 0;
    fc.assert(fc.property(documents, (text) => {
      runs++;
      if (expectSameAsFull(text)) fast++;
    }), { numRuns: 4000 });
    // Not a vacuous comparison: a good share of the documents takes the fast path, and of those
    // a good share has its positions found by it (the others hold an empty value).
    expect(fast / runs).toBeGreaterThan(0.2);
    expect(positionsFound / fast).toBeGreaterThan(0.3);
  }, 120_000);

  it('reads an exported catalog, the shape fleet.yaml usually has, on the fast path', () => {
    const modules = [
      moduleOf({ name: 'base', variety: 'config', category: { name: 'system', position: 1 }, priority: 3, config: { level: 2, names: ['a', 'b c'], deep: { x: null, y: 1.5, z: '1.0' } }, fileSpec: ['/etc/base/**', '*.conf'], mask: ['/var/cache/**'], packageSpec: ['curl'], manifest: { schema_version: 1, services: [{ name: 'svc', command: 'run --flag "x"', ports: [80, 443] }], dependencies: { requires: [] } } }),
      moduleOf({ name: 'web', variety: 'config', category: { name: 'apps', position: 2 }, initStart: 'systemctl start nginx', config: { 'key with space': 'yes', 'true': 'no', 'n': '~', 'quote': "it's \"q\"", 'hash': 'a #b', 'colon': 'a: b', 'dash': '- x' }, manifest: { schema_version: 1, dependencies: { requires: ['base'] } } }),
    ];
    const templates = [templateOf({ name: 'tpl', modules: [{ module: 'web', priority: 2, config: { role: 'r' } }, { module: 'base', enabled: false }] })];
    const assignments = [assignmentOf({ node: 'node-01', module: 'web', template: 'tpl', config: { slot: 1, tuned: true } }, 'test'), assignmentOf({ node: 'node-02', module: 'base', enabled: false }, 'test')];
    const pools = [poolOf({ name: 'pool', template: 'tpl', target: 2, min: 1, max: 3, lifecycle: 'ephemeral', status: 'active' })];
    const text = exportFleetFile({ ...EMPTY_DESIRED_CATALOG, modules, templates, assignments, pools });
    expect(expectSameAsFull(text)).toBe(true);
    expect(expectSameAsFull('')).toBe(true);
    expect(expectSameAsFull('# only a comment\n')).toBe(true);
  });

  it('gives up on what the full reader reports, so every problem still comes with its position', () => {
    for (const text of ['a: 1\na: 2\n', 'a: &x 1\nb: *x\n', 'a: !t 1\n', 'a: [1, 2\n', 'a:\n  b: 1\n c: 2\n', '- a\nb: 1\n', 'a: b: c\n', 'a: {b: 1, b: 2}\n', `${'k'.repeat(1030)}: 1\n`, `"${'k'.repeat(1030)}": 1\n`]) {
      expect(readYamlFast(text), text).toBe(NOT_FAST);
      expect(readYaml(text).problems.length, text).toBeGreaterThan(0);
      expectSameAsFull(text);
    }
    // And on what it does not read, though the full reader reads it.
    for (const text of ['---\na: 1\n', 'a: |\n  x\n', 'a: "\u00e9"\n', 'a:\tb\n', 'a: 1\r\n', '? a\n: b\n', 'a: b\n  c\n', `a: { ${'k'.repeat(1030)}: 1 }\n`]) {
      expect(readYamlFast(text), text).toBe(NOT_FAST);
      expectSameAsFull(text);
    }
  });
});
