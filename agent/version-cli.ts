import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  CatalogInputError,
  type DesiredChange,
  IllegalTransitionError,
  type InstanceObservation,
  type ModuleVersion,
  type PromotionThresholds,
  type PromotionVerdict,
  VERSION_STATES,
  type VersionState,
  checkVersionTrust,
  moduleVersionOf,
  moveVersion,
  trustPolicyOf,
  versionStatement,
} from '../crdt-schema/index.ts';
import { generateKeyPair, signBytes, toBase64Url } from '../mesh/index.ts';
import { CryptoRandom } from './adapters/crypto-random.ts';
import type { ApiClient } from './api-client.ts';
import { CatalogFileError, fetchCatalog, formatChanges, putChanges, submitChanges } from './catalog-command.ts';
import { type Command, type FlagKind, type ParsedArgs, UsageError, apiCommandSpec, parseDuration } from './cli-args.ts';
import { readOperatorKeyFile, readPublisherKeyFile, writePublisherKeyFile } from './key-files.ts';

type Flags = ParsedArgs['flags'];

/** What `GET /api/v1/catalog/promotion` answers. */
interface PromotionEvidenceAnswer {
  readonly version: string;
  readonly state: VersionState;
  readonly thresholds: PromotionThresholds;
  readonly verdict: PromotionVerdict;
  readonly observations: readonly InstanceObservation[];
}

/**
 * Module versions and trust (docs/CATALOG.md §Versions, trust, promotion): a publisher key signs
 * a version's module, number and artifact digests where it is built; a module's trust policy
 * names the publisher keys it takes; versions move built → staging → blessed → live → retired.
 * The node checks the same rules again when it records a change.
 */
export function versionCommands(apiFlags: Readonly<Record<string, FlagKind>>, clientOf: (flags: Flags) => Promise<ApiClient>, print: (value: unknown) => void): Record<string, Command> {
  const out = (text: string): void => void process.stdout.write(text);
  const spec = apiCommandSpec(apiFlags);
  const put = async (flags: Flags, changes: DesiredChange[], report: Parameters<typeof formatChanges>[0]): Promise<number> => {
    await submitChanges(await clientOf(flags), await readOperatorKeyFile(String(flags['key'])), changes);
    if (flags['json'] === true) print({ changes: report });
    else out(formatChanges(report, false));
    return 0;
  };
  return {
    'module publisher create': {
      spec: { flags: { name: 'string', out: 'string', json: 'boolean' }, required: ['name', 'out'], positional: { min: 0, max: 0, name: '' } },
      run: async ({ flags }) => {
        const path = resolve(String(flags['out']));
        if (existsSync(path)) throw new UsageError(`${path} already exists: choose another --out`);
        const keys = generateKeyPair(new CryptoRandom());
        await writePublisherKeyFile(path, String(flags['name']), keys);
        const publicKey = toBase64Url(keys.publicKey);
        if (flags['json'] === true) print({ publicKey, keyFile: path });
        else out(`publisher key ${publicKey} written to ${path}: name it in a module's trust policy (powernode module trust NAME --publisher ${publicKey})\n`);
        return 0;
      },
    },
    'module trust': {
      spec: spec({ min: 1, max: 1, name: 'module name' }, { publisher: 'list', 'promotion-instances': 'string', 'promotion-dwell': 'string' }, ['publisher']),
      run: async ({ flags, positional }) => {
        const instances = flags['promotion-instances'];
        const dwell = flags['promotion-dwell'];
        if ((instances === undefined) !== (dwell === undefined)) throw new UsageError('--promotion-instances and --promotion-dwell go together (the original\'s are 3 and 30m)');
        if (instances !== undefined && (!/^[0-9]+$/.test(String(instances)) || Number(instances) < 1 || Number(instances) > 100)) throw new UsageError(`--promotion-instances takes a whole number from 1 to 100, not ${JSON.stringify(instances)}`);
        const dwellMs = dwell === undefined ? undefined : /^0(ms|s|m|h|d)?$/.test(String(dwell)) ? 0 : parseDuration(String(dwell));
        if (dwellMs !== undefined && dwellMs > 30 * 86_400_000) throw new UsageError(`--promotion-dwell is at most 30d, not ${JSON.stringify(dwell)}`);
        const { catalog } = await fetchCatalog(await clientOf(flags));
        // Without the flags, a threshold lowered before stays as it is.
        const held = catalog.trust.find((t) => t.module === positional[0])?.promotion;
        const promotion = dwellMs === undefined ? (held === undefined ? {} : { promotion: held }) : { promotion: { instances: Number(instances), dwellMs } };
        const policy = checked(() => trustPolicyOf({ module: positional[0], publishers: flags['publisher'], ...promotion }));
        if (!catalog.modules.some((m) => m.name === policy.module)) throw new CatalogFileError(`no module ${JSON.stringify(policy.module)} in the catalog`);
        const { changes, report } = putChanges(catalog, 'trust', [policy]);
        return put(flags, changes, report);
      },
    },
    'module version publish': {
      spec: spec({ min: 1, max: 1, name: 'module name' }, { number: 'string', artifact: 'list', 'publisher-key': 'string' }, ['number', 'artifact', 'publisher-key']),
      run: async ({ flags, positional }) => {
        const artifacts: Record<string, { digest: string }> = {};
        for (const text of flags['artifact'] as string[]) {
          const [architecture, digest, ...rest] = text.split('=');
          if (rest.length > 0 || architecture === undefined || digest === undefined) throw new UsageError(`--artifact takes ARCH=sha256:DIGEST, not ${JSON.stringify(text)}`);
          artifacts[architecture] = { digest };
        }
        const unsigned = checked(() => moduleVersionOf({ module: positional[0], number: Number(flags['number']), artifacts }));
        const publisher = await readPublisherKeyFile(String(flags['publisher-key']));
        const version: ModuleVersion = { ...unsigned, signature: { publicKey: publisher.publicKey, signature: toBase64Url(signBytes(publisher.seed, versionStatement(unsigned))) } };
        const { catalog } = await fetchCatalog(await clientOf(flags));
        if (!catalog.modules.some((m) => m.name === version.module)) throw new CatalogFileError(`no module ${JSON.stringify(version.module)} in the catalog`);
        if (catalog.versions.some((v) => v.module === version.module && v.number === version.number)) throw new CatalogFileError(`${version.module}@${version.number} is already published: versions never change; publish ${version.module}@${Math.max(...catalog.versions.filter((v) => v.module === version.module).map((v) => v.number)) + 1}`);
        return put(flags, [{ op: 'put', kind: 'version', value: version }], [{ type: 'add', kind: 'version', key: `${version.module}@${version.number}` }]);
      },
    },
    'module version promote': {
      spec: spec({ min: 2, max: 2, name: `MODULE@NUMBER and the state to move to (${VERSION_STATES.join(', ')})` }),
      run: async ({ flags, positional }) => {
        const [module, numberText] = positional[0]!.split('@');
        const to = positional[1] as VersionState;
        if (!(VERSION_STATES as readonly string[]).includes(to)) throw new UsageError(`the state is one of ${VERSION_STATES.join(', ')}, not ${JSON.stringify(positional[1])}`);
        const { catalog } = await fetchCatalog(await clientOf(flags));
        const held = catalog.versions.find((v) => v.module === module && v.number === Number(numberText));
        if (held === undefined) throw new CatalogFileError(`no version ${positional[0]} in the catalog`);
        const moved = checked(() => moveVersion(held, to));
        if (to === 'blessed' || to === 'live') {
          const policy = catalog.trust.find((t) => t.module === held.module);
          if (policy === undefined) throw new CatalogFileError(`${held.module} has no trust policy: name its publishers first (powernode module trust ${held.module} --publisher KEY)`);
          const verdict = checkVersionTrust(held, policy);
          if (!verdict.trusted) throw new CatalogFileError(`${positional[0]} is not trusted: ${verdict.reason}`);
        }
        return put(flags, [{ op: 'put', kind: 'version', value: moved }], [{ type: 'update', kind: 'version', key: `${held.module}@${held.number}` }]);
      },
    },
    'module version evidence': {
      spec: spec({ min: 1, max: 1, name: 'MODULE@NUMBER' }),
      run: async ({ flags, positional }) => {
        const evidence = await (await clientOf(flags)).get<PromotionEvidenceAnswer>(`/api/v1/catalog/promotion?version=${encodeURIComponent(positional[0]!)}`);
        if (flags['json'] === true) {
          print(evidence);
          return 0;
        }
        const { verdict, thresholds } = evidence;
        const head = `${evidence.version} (${evidence.state}): ${verdict.eligible ? 'may be blessed' : `may not be blessed yet: ${verdict.reason}`}\n` +
          `  needs ${thresholds.requiredCount} running instances for ${minutes(thresholds.dwellMs)}; ${verdict.runningCount} run it, the newest for ${minutes(verdict.dwellMs)}\n`;
        const lines = evidence.observations.map((o) => `  ${o.instance.padEnd(54)} ${o.state.padEnd(11)} ${o.digest.slice(0, 19)}… ${o.runningSinceMs === undefined ? '' : `running since ${new Date(o.runningSinceMs).toISOString()}`}`);
        out(head + (lines.length === 0 ? '  no member reports running it\n' : `${lines.join('\n')}\n`));
        return 0;
      },
    },
    'module version list': {
      spec: spec({ min: 0, max: 1, name: 'module name' }),
      run: async ({ flags, positional }) => {
        const { catalog } = await fetchCatalog(await clientOf(flags));
        const versions = catalog.versions.filter((v) => positional[0] === undefined || v.module === positional[0]);
        if (flags['json'] === true) print({ versions });
        else {
          const lines = versions.map((v) => {
            const policy = catalog.trust.find((t) => t.module === v.module);
            const trust = policy === undefined ? 'no trust policy' : checkVersionTrust(v, policy).trusted ? 'trusted' : 'NOT trusted';
            return `${`${v.module}@${v.number}`.padEnd(28)} ${v.state.padEnd(8)} ${trust.padEnd(16)} ${Object.entries(v.artifacts).map(([arch, a]) => `${arch}=${a.digest.slice(0, 19)}…`).join(' ')}`;
          });
          out(lines.length === 0 ? 'no versions\n' : `${lines.join('\n')}\n`);
        }
        return 0;
      },
    },
  };
}

/** A dwell as an operator reads it: whole minutes, or seconds under a few minutes. */
function minutes(ms: number): string {
  return ms < 5 * 60_000 ? `${Math.floor(ms / 1000)} s` : `${Math.floor(ms / 60_000)} min`;
}

/** Runs a catalog check, turning its typed errors into refusals the CLI prints. */
function checked<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof CatalogInputError || error instanceof IllegalTransitionError) throw new CatalogFileError(error.message);
    throw error;
  }
}
