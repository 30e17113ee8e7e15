import { type FileHandle, open, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  CatalogInputError,
  type DesiredCatalog,
  type DesiredChange,
  FLEET_FILE_LIMITS,
  type FleetChange,
  type FleetEntryRef,
  type FleetFileNotice,
  type FleetFileProblem,
  type FleetKind,
  desiredInputOf,
  desiredValueOf,
  diffFleetFile,
  exportFleetFile,
  formatFleetProblem,
  parseFleetFile,
} from '../crdt-schema/index.ts';
import type { ApiClient } from './api-client.ts';
import { type ReportedChange, fetchCatalog, formatChanges, submitChanges } from './catalog-command.ts';
import { type Command, type FlagKind, type ParsedArgs, UsageError, apiCommandSpec } from './cli-args.ts';
import { readOperatorKeyFile } from './key-files.ts';

type Flags = ParsedArgs['flags'];

/** Kept entries listed one by one in human output; past this only the count is given. */
const KEPT_LISTED_MAX = 20;

/** Thrown when a fleet.yaml cannot be read (missing, not a file, over 1 MiB, not UTF-8); the message names the file. */
export class FleetFileError extends Error {
  override name = 'FleetFileError';
}

/**
 * `fleet apply FILE [--dry-run] [--prune]` and `fleet export [--out FILE]` (docs/CATALOG.md
 * §fleet.yaml). The file is read, checked and diffed here, on the operator's machine, and the
 * changes are signed here too, all sent in one request: the node records all of them or none.
 */
export function fleetCommands(apiFlags: Readonly<Record<string, FlagKind>>, clientOf: (flags: Flags) => Promise<ApiClient>, print: (value: unknown) => void): Record<string, Command> {
  const spec = apiCommandSpec(apiFlags);
  return {
    'fleet apply': {
      spec: spec({ min: 1, max: 1, name: 'fleet.yaml file' }, { 'dry-run': 'boolean', prune: 'boolean' }),
      run: async ({ flags, positional }) => fleetApply(flags, positional[0]!, clientOf, print),
    },
    'fleet export': {
      spec: spec({ min: 0, max: 0, name: '' }, { out: 'string' }),
      run: async ({ flags }) => fleetExport(flags, clientOf, print),
    },
  };
}

async function fleetApply(flags: Flags, fileName: string, clientOf: (flags: Flags) => Promise<ApiClient>, print: (value: unknown) => void): Promise<number> {
  const dryRun = flags['dry-run'] === true;
  const parsed = parseFleetFile(await readFleetText(fileName));
  if (!parsed.ok) return refuse(fileName, parsed.problems);
  const client = await clientOf(flags);
  const diff = diffFleetFile(parsed.file, checkedCatalog((await fetchCatalog(client)).catalog), { prune: flags['prune'] === true });
  if (!diff.ok) return refuse(fileName, diff.problems);
  const report: ReportedChange[] = diff.changes.map(({ type, kind, key }) => ({ type, kind, key }));
  if (!dryRun) await submitChanges(client, await readOperatorKeyFile(String(flags['key'])), diff.changes.map(desiredChangeOf));
  if (flags['json'] === true) {
    print({
      changes: report,
      ...(dryRun ? { dryRun: true } : {}),
      ...(diff.kept.length > 0 ? { kept: diff.kept } : {}),
      ...(diff.notices.length > 0 ? { notices: diff.notices } : {}),
    });
  } else {
    process.stdout.write(formatChanges(report, dryRun));
    process.stderr.write(formatKept(diff.kept) + formatNotices(fileName, diff.notices));
  }
  return 0;
}

async function fleetExport(flags: Flags, clientOf: (flags: Flags) => Promise<ApiClient>, print: (value: unknown) => void): Promise<number> {
  const out = flags['out'] === undefined ? undefined : resolve(String(flags['out']));
  const catalog = checkedCatalog((await fetchCatalog(await clientOf(flags))).catalog);
  const text = exportFleetFile(catalog);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > FLEET_FILE_LIMITS.bytesMax) {
    process.stderr.write(`powernode: warning: this export is ${bytes} bytes, over the ${FLEET_FILE_LIMITS.bytesMax} bytes fleet apply reads: split it by section before applying it\n`);
  }
  if (out === undefined) {
    process.stdout.write(text);
    return 0;
  }
  try {
    // 'wx' refuses an existing file at the moment of writing, not only when it was checked.
    await writeFile(out, text, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${out} already exists: choose another --out`);
    throw new FleetFileError(`cannot write ${out}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const counts = { modules: catalog.modules.length, templates: catalog.templates.length, assignments: catalog.assignments.length, pools: catalog.pools.length };
  if (flags['json'] === true) print({ out, ...counts });
  else process.stdout.write(`wrote ${counts.modules} modules, ${counts.templates} templates, ${counts.assignments} assignments and ${counts.pools} pools to ${out}\n`);
  return 0;
}

/**
 * The file's text, refused before it is read whole when it is over the 1 MiB cap (also if it
 * grows while being read), is not a regular file, or is not UTF-8.
 */
export async function readFleetText(fileName: string): Promise<string> {
  let handle: FileHandle;
  try {
    handle = await open(fileName, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FleetFileError(code === 'ENOENT' ? `${fileName}: no such file` : `cannot read ${fileName}: ${code ?? (error as Error).message}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new FleetFileError(`${fileName} is not a file: give the path of a fleet.yaml`);
    if (stat.size > FLEET_FILE_LIMITS.bytesMax) throw tooLarge(fileName, stat.size);
    const buffer = Buffer.alloc(FLEET_FILE_LIMITS.bytesMax + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > FLEET_FILE_LIMITS.bytesMax) throw tooLarge(fileName, length);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
    } catch {
      throw new FleetFileError(`${fileName} is not UTF-8 text: save it as UTF-8`);
    }
  } finally {
    await handle.close();
  }
}

function tooLarge(fileName: string, bytes: number): FleetFileError {
  return new FleetFileError(`${fileName} is ${bytes} bytes; at most ${FLEET_FILE_LIMITS.bytesMax} (1 MiB) are read: split the fleet over several files (one per section) or trim it`);
}

/** Every problem as `FILE:LINE:COL: path: message` on stderr; nothing was sent. */
function refuse(fileName: string, problems: readonly FleetFileProblem[]): number {
  const lines = problems.map((problem) => formatFleetProblem(problem, fileName));
  lines.push(`powernode: ${fileName}: ${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}; nothing was applied`);
  process.stderr.write(`${lines.join('\n')}\n`);
  return 1;
}

/** One desired-document change per file change: add and update put `after`, remove removes `key`. */
function desiredChangeOf(change: FleetChange): DesiredChange {
  if (change.type === 'remove') return { op: 'remove', kind: change.kind, key: change.key };
  if (change.after === undefined) throw new Error(`${change.type} ${change.kind} ${change.key} has no value: fleet diff broke its contract`);
  return { op: 'put', kind: change.kind, value: change.after } as DesiredChange;
}

/**
 * The node's catalog with every value fleet.yaml manages checked again by its kind's checker,
 * as the file's values were: what came over the network is validated before it is diffed, and
 * both sides of the comparison are in the same checked form.
 */
function checkedCatalog(catalog: DesiredCatalog): DesiredCatalog {
  const recheck = <K extends FleetKind>(kind: K, values: readonly unknown[]) =>
    values.map((value, index) => {
      try {
        return desiredValueOf(kind, desiredInputOf(kind, value as never));
      } catch (error) {
        if (error instanceof CatalogInputError) throw new FleetFileError(`the node's catalog holds a ${kind} (#${index + 1}) this CLI refuses: ${error.message}; is the CLI older than the node?`);
        throw error;
      }
    });
  return {
    ...catalog,
    modules: recheck('module', catalog.modules),
    templates: recheck('template', catalog.templates),
    assignments: recheck('assignment', catalog.assignments),
    pools: recheck('pool', catalog.pools),
  } as DesiredCatalog;
}

function formatKept(kept: readonly FleetEntryRef[]): string {
  if (kept.length === 0) return '';
  const listed = kept.slice(0, KEPT_LISTED_MAX).map((entry) => `  ${entry.kind} ${entry.key}`);
  if (kept.length > KEPT_LISTED_MAX) listed.push(`  … and ${kept.length - KEPT_LISTED_MAX} more`);
  return `kept ${kept.length} ${kept.length === 1 ? 'entry' : 'entries'} the file does not name (--prune removes them):\n${listed.join('\n')}\n`;
}

function formatNotices(fileName: string, notices: readonly FleetFileNotice[]): string {
  return notices.map((notice) => `${fileName}:${notice.line}:${notice.column}: notice: ${notice.message}\n`).join('');
}
