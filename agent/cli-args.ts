/** Thrown for a wrong flag, a missing argument or a malformed value; the CLI prints usage and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type FlagKind = 'string' | 'list' | 'boolean';

export interface CommandSpec {
  readonly flags: Readonly<Record<string, FlagKind>>;
  readonly required?: readonly string[];
  /** How many positional arguments the command takes. */
  readonly positional: { readonly min: number; readonly max: number; readonly name: string };
}

/** A command of the CLI: how its arguments are parsed, and what it does (its exit code). */
export type Command = { spec: CommandSpec; run: (args: ParsedArgs) => Promise<number> };

/**
 * The spec builder for commands that talk to a node's API: `apiFlags` (`--api`, `--key`,
 * `--json`) plus the command's own flags, with `--api`, `--key` and `required` required.
 */
export function apiCommandSpec(apiFlags: Readonly<Record<string, FlagKind>>): (positional: CommandSpec['positional'], flags?: Readonly<Record<string, FlagKind>>, required?: readonly string[]) => CommandSpec {
  return (positional, flags = {}, required = []) => ({ flags: { ...apiFlags, ...flags }, required: ['api', 'key', ...required], positional });
}

export interface ParsedArgs {
  readonly flags: Readonly<Record<string, string | string[] | boolean | undefined>>;
  readonly positional: readonly string[];
}

/** Parses `--flag value`, `--flag=value` and `--switch` strictly against `spec`. */
export function parseArgs(argv: readonly string[], spec: CommandSpec): ParsedArgs {
  const flags: Record<string, string | string[] | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const kind = spec.flags[name];
    if (kind === undefined) throw new UsageError(`unknown flag --${name}`);
    if (kind === 'boolean') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || (eq === -1 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
    if (kind === 'list') flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    else if (flags[name] !== undefined) throw new UsageError(`--${name} given twice`);
    else flags[name] = value;
  }
  for (const name of spec.required ?? []) if (flags[name] === undefined) throw new UsageError(`--${name} is required`);
  if (positional.length < spec.positional.min) throw new UsageError(`missing ${spec.positional.name}`);
  if (positional.length > spec.positional.max) throw new UsageError(`unexpected argument ${JSON.stringify(positional[spec.positional.max])}`);
  return { flags, positional };
}

/** Parses a duration such as `90s`, `30m`, `1h` or `2d` into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (match === null) throw new UsageError(`${JSON.stringify(text)} is not a duration: use e.g. 90s, 30m, 1h or 2d`);
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const value = Number(match[1]) * units[match[2]!]!;
  if (value <= 0) throw new UsageError('a duration must be positive');
  return value;
}

/** Parses `HOST:PORT` (IPv6 as `[::1]:PORT`). */
export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65_535) throw new UsageError(`${JSON.stringify(text)} is not HOST:PORT (e.g. 127.0.0.1:7420)`);
  return { host: match[1] ?? match[2]!, port };
}
