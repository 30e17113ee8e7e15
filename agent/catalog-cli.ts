import { type DesiredKind, type TemplatePreview, desiredInputOf } from '../crdt-schema/index.ts';
import type { ApiClient } from './api-client.ts';
import {
  type ReportedChange,
  describeValue,
  explainApplyError,
  fetchCatalog,
  formatChanges,
  formatPreview,
  listOfKind,
  putChanges,
  putWarnings,
  readValues,
  removeChanges,
  submitChanges,
  templateApplyChanges,
} from './catalog-command.ts';
import { type Command, type FlagKind, type ParsedArgs, apiCommandSpec } from './cli-args.ts';
import { readOperatorKeyFile } from './key-files.ts';

type Flags = ParsedArgs['flags'];

const NOUNS: ReadonlyArray<{ readonly noun: string; readonly kind: DesiredKind; readonly what: string }> = [
  { noun: 'module', kind: 'module', what: 'module name' },
  { noun: 'template', kind: 'template', what: 'template name' },
  { noun: 'pool', kind: 'pool', what: 'pool name' },
];

/**
 * The catalog's commands: `module|template|pool put|list|show|rm`, `template preview|apply`,
 * `assignment list`. Writes are signed here with the operator key; reads are signed requests too.
 */
export function catalogCommands(apiFlags: Readonly<Record<string, FlagKind>>, clientOf: (flags: Flags) => Promise<ApiClient>, print: (value: unknown) => void): Record<string, Command> {
  const out = (text: string): void => void process.stdout.write(text);
  const spec = apiCommandSpec(apiFlags);
  const submit = async (flags: Flags, changes: Parameters<typeof submitChanges>[2], report: readonly ReportedChange[], dryRun = false): Promise<number> => {
    if (!dryRun) await submitChanges(await clientOf(flags), await readOperatorKeyFile(String(flags['key'])), changes);
    if (flags['json'] === true) print({ changes: report, ...(dryRun ? { dryRun: true } : {}) });
    else out(formatChanges(report, dryRun));
    return 0;
  };
  const commands: Record<string, Command> = {};
  for (const { noun, kind, what } of NOUNS) {
    commands[`${noun} put`] = {
      spec: spec({ min: 1, max: 100, name: `${noun} file (JSON)` }, { 'dry-run': 'boolean' }),
      run: async ({ flags, positional }) => {
        const values = await readValues(kind, positional);
        const { catalog } = await fetchCatalog(await clientOf(flags));
        const { changes, report } = putChanges(catalog, kind, values);
        for (const warning of putWarnings(catalog, kind, values)) process.stderr.write(`powernode: warning: ${warning}\n`);
        return submit(flags, changes, report, flags['dry-run'] === true);
      },
    };
    commands[`${noun} list`] = {
      spec: spec({ min: 0, max: 0, name: '' }),
      run: async ({ flags }) => {
        const values = listOfKind((await fetchCatalog(await clientOf(flags))).catalog, kind);
        if (flags['json'] === true) print({ [`${noun}s`]: values });
        else out(values.length === 0 ? `no ${noun}s in the catalog\n` : `${values.map((value) => describeValue(kind, value)).join('\n')}\n`);
        return 0;
      },
    };
    commands[`${noun} show`] = {
      spec: spec({ min: 1, max: 1, name: what }),
      run: async ({ flags, positional }) => {
        const value = listOfKind((await fetchCatalog(await clientOf(flags))).catalog, kind).find((v) => (v as { name: string }).name === positional[0]);
        if (value === undefined) {
          process.stderr.write(`powernode: no ${noun} ${JSON.stringify(positional[0])} in the catalog\n`);
          return 1;
        }
        // As a file takes it: what `put` reads back to the same value.
        const input = desiredInputOf(kind, value);
        if (flags['json'] === true) print(input);
        else out(`${JSON.stringify(input, null, 2)}\n`);
        return 0;
      },
    };
    commands[`${noun} rm`] = {
      spec: spec({ min: 1, max: 100, name: what }),
      run: async ({ flags, positional }) => {
        const { catalog } = await fetchCatalog(await clientOf(flags));
        const { changes, report } = removeChanges(catalog, kind, positional);
        return submit(flags, changes, report);
      },
    };
  }
  commands['template preview'] = {
    spec: spec({ min: 1, max: 1, name: 'template name' }),
    run: async ({ flags, positional }) => {
      const preview = await (await clientOf(flags)).get<TemplatePreview>(`/api/v1/catalog/preview?template=${encodeURIComponent(positional[0]!)}`);
      if (flags['json'] === true) print(preview);
      else out(formatPreview(preview));
      return 0;
    },
  };
  commands['template apply'] = {
    spec: { ...spec({ min: 1, max: 1, name: 'template name' }, { node: 'list', 'purge-stale': 'boolean', 'dry-run': 'boolean' }), required: ['api', 'key', 'node'] },
    run: async ({ flags, positional }) => {
      const { catalog } = await fetchCatalog(await clientOf(flags));
      let planned: ReturnType<typeof templateApplyChanges>;
      try {
        planned = templateApplyChanges(catalog, positional[0]!, flags['node'] as string[], flags['purge-stale'] === true);
      } catch (error) {
        explainApplyError(error);
      }
      if (planned.stale.length > 0 && flags['json'] !== true) {
        process.stderr.write(`kept ${planned.stale.length} assignments the template no longer names (--purge-stale removes them)\n`);
      }
      return submit(flags, planned.changes, planned.report, flags['dry-run'] === true);
    },
  };
  commands['assignment list'] = {
    spec: spec({ min: 0, max: 0, name: '' }, { node: 'list' }),
    run: async ({ flags }) => {
      const nodes = flags['node'] as string[] | undefined;
      const assignments = (await fetchCatalog(await clientOf(flags))).catalog.assignments.filter((a) => nodes === undefined || nodes.includes(a.node));
      if (flags['json'] === true) print({ assignments });
      else out(assignments.length === 0 ? 'no assignments\n' : `${assignments.map((a) => describeValue('assignment', a)).join('\n')}\n`);
      return 0;
    },
  };
  return commands;
}
