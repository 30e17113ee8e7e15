// Dry run of a fleet.yaml describing 1,000 nodes — parse, validate and diff against the catalog —
// the catalog issue's target is ≤ 1 s. Run: npm run bench:fleet-diff
import { cpus, loadavg } from 'node:os';
import {
  type Assignment, type DesiredCatalog, EMPTY_DESIRED_CATALOG, type Module, type Template, assignmentOf, diffFleetFile, exportFleetFile, moduleOf,
  parseFleetFile, previewTemplate, templateOf,
} from '../crdt-schema/index.ts';
import { NOT_FAST, readYamlFast } from '../crdt-schema/catalog/fleet-yaml.ts';

const NODES = 1_000;
const MODULES = 50;
const TEMPLATES = 10;
const HAND_ASSIGNMENTS_PER_NODE = 2;
const RUNS = 20;
const WARMUP_RUNS = 3;

/** A small deterministic generator (LCG), so every run diffs the same file. */
function generator(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state % below;
  };
}

const next = generator(11);
const moduleName = (index: number): string => `mod-${String(index).padStart(2, '0')}`;

/** 50 config modules in 5 categories, each but the first few requiring an earlier one, with a config and a few spec lines. */
function modules(): Module[] {
  return Array.from({ length: MODULES }, (_, index) => {
    const name = moduleName(index);
    return moduleOf({
      name,
      variety: 'config',
      category: { name: `cat-${index % 5}`, position: (index % 5) + 1 },
      priority: next(1_000),
      config: { workers: 1 + next(8) },
      manifest: { schema_version: 1, dependencies: { requires: index >= 5 && index % 3 === 0 ? [moduleName(next(index))] : [] }, services: [{ name: 'svc', ports: [8_000 + index] }] },
      fileSpec: [`/opt/${name}/**`, `/etc/${name}/**`],
      packageSpec: [`pkg-${name}`],
    });
  });
}

/** 10 templates of 5-7 modules each. */
function templates(): Template[] {
  return Array.from({ length: TEMPLATES }, (_, index) => {
    const chosen = new Set(Array.from({ length: 5 + next(3) }, () => moduleName(next(MODULES))));
    return templateOf({ name: `tpl-${index}`, modules: [...chosen].map((module) => ({ module, priority: next(10), config: { role: `r${index}` } })) });
  });
}

/** Each node gets one template's closure (about 8 modules) and 2 modules by hand: about 10 a node. */
function assignments(catalogModules: readonly Module[], catalogTemplates: readonly Template[]): Assignment[] {
  const closures = catalogTemplates.map((template) => previewTemplate(template, catalogModules));
  const out = new Map<string, Assignment>();
  for (let node = 0; node < NODES; node++) {
    const nodeName = `node-${String(node).padStart(4, '0')}`;
    const preview = closures[node % TEMPLATES]!;
    for (const entry of preview.closure) out.set(`${nodeName}:${entry.module}`, assignmentOf({ node: nodeName, module: entry.module, template: preview.template, config: entry.config }, 'bench'));
    for (let hand = 0; hand < HAND_ASSIGNMENTS_PER_NODE; hand++) {
      const module = moduleName(next(MODULES));
      if (!out.has(`${nodeName}:${module}`)) out.set(`${nodeName}:${module}`, assignmentOf({ node: nodeName, module, config: { slot: hand } }, 'bench'));
    }
  }
  return [...out.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.module < b.module ? -1 : 1));
}

/** The file's catalog: about 3% of assignments changed, 1% gone, 1% new; 2 modules and 1 template changed. */
function edited(current: DesiredCatalog): DesiredCatalog {
  const changed = current.assignments.flatMap((assignment, index): Assignment[] => {
    if (index % 100 === 7) return [];
    if (index % 33 === 3) return [{ ...assignment, enabled: !assignment.enabled, config: { ...assignment.config, tuned: true } }];
    return [assignment];
  });
  const added = Array.from({ length: Math.round(current.assignments.length / 100) }, (_, index) => assignmentOf({ node: `node-${String(index).padStart(4, '0')}`, module: 'mod-49', config: { added: index } }, 'bench'));
  const seen = new Set(changed.map((assignment) => `${assignment.node}:${assignment.module}`));
  const assignments = [...changed, ...added.filter((assignment) => !seen.has(`${assignment.node}:${assignment.module}`))];
  const modulesEdited = current.modules.map((module, index) => (index === 10 || index === 20 ? { ...module, priority: (module.priority + 1) % 1_000 } : module));
  const templatesEdited = current.templates.map((template, index) => (index === 0 ? { ...template, modules: template.modules.map((entry) => ({ ...entry, priority: entry.priority + 1 })) } : template));
  return { ...current, modules: modulesEdited, templates: templatesEdited, assignments };
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (value: number): number => Math.round(value * 10) / 10;

const catalogModules = modules();
const catalogTemplates = templates();
const current: DesiredCatalog = { ...EMPTY_DESIRED_CATALOG, modules: catalogModules, templates: catalogTemplates, assignments: assignments(catalogModules, catalogTemplates) };
const text = exportFleetFile(edited(current));

function dryRun(): { changes: number; parseMs: number } {
  const started = performance.now();
  const parsed = parseFleetFile(text);
  if (!parsed.ok) throw new Error(`the benchmark's file is invalid: ${parsed.problems[0]!.message}`);
  const parseMs = performance.now() - started;
  const diff = diffFleetFile(parsed.file, current, { prune: true });
  if (!diff.ok) throw new Error(`the benchmark's file does not apply: ${diff.problems[0]!.message}`);
  return { changes: diff.changes.length, parseMs };
}

let last = dryRun();
for (let run = 1; run < WARMUP_RUNS; run++) last = dryRun();
// Wall time is what the target is about; CPU time is printed too, because on a shared machine it
// says what the code costs when wall time also says what the neighbours do.
const timesMs: number[] = [];
const cpuTimesMs: number[] = [];
const parseTimesMs: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  last = dryRun();
  const cpu = process.cpuUsage(cpuStarted);
  timesMs.push(performance.now() - started);
  cpuTimesMs.push((cpu.user + cpu.system) / 1000);
  parseTimesMs.push(last.parseMs);
}

console.log(`fleet.yaml dry run: ${NODES} nodes, ${MODULES} modules, ${TEMPLATES} templates, ${current.assignments.length} assignments in the catalog`);
console.log(`  file ${Buffer.byteLength(text)} bytes; ${last.changes} changes (prune on); ${WARMUP_RUNS} warm-up runs, then ${RUNS} timed`);
console.log(`  read by ${readYamlFast(text) === NOT_FAST ? 'the full YAML reader (the fast path gave up)' : 'the fast path'}`);
console.log(`  parse + validate + diff: p50 ${round(percentile(timesMs, 50))} ms, p99 ${round(percentile(timesMs, 99))} ms (target ≤ 1000 ms)`);
console.log(`  of which parse + validate: p50 ${round(percentile(parseTimesMs, 50))} ms; CPU time p50 ${round(percentile(cpuTimesMs, 50))} ms, p99 ${round(percentile(cpuTimesMs, 99))} ms`);
console.log(`  machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`);
