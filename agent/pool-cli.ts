import type { PoolAnswer } from '../actors/index.ts';
import type { Pool, PoolMemberView } from '../crdt-schema/index.ts';
import type { ApiClient } from './api-client.ts';
import { type Command, type FlagKind, type ParsedArgs, apiCommandSpec } from './cli-args.ts';

type Flags = ParsedArgs['flags'];

/**
 * `pool acquire|release|members`: claims on pool members, made by the one owner of
 * `control.pools` whichever node is asked (docs/CATALOG.md §Pool claims). Pool definitions are
 * `pool put|list|show|rm` (agent/catalog-cli.ts).
 */
export function poolCommands(apiFlags: Readonly<Record<string, FlagKind>>, clientOf: (flags: Flags) => Promise<ApiClient>, print: (value: unknown) => void): Record<string, Command> {
  const out = (text: string): void => void process.stdout.write(text);
  const spec = apiCommandSpec(apiFlags);
  return {
    'pool acquire': {
      spec: spec({ min: 1, max: 1, name: 'pool name' }, { for: 'string' }),
      run: async ({ flags, positional }) => {
        const claim = await (await clientOf(flags)).post<Extract<PoolAnswer, { type: 'claimed' }>>('/api/v1/pools/acquire', { pool: positional[0], ...(flags['for'] === undefined ? {} : { for: String(flags['for']) }) });
        if (flags['json'] === true) print(claim);
        else out(`claimed ${claim.name} (${claim.member}) from pool ${claim.pool}: release it with powernode pool release ${claim.pool} ${claim.member}\n`);
        return 0;
      },
    },
    'pool release': {
      spec: spec({ min: 2, max: 2, name: 'pool name and member (peer id or name)' }, { reuse: 'boolean' }),
      run: async ({ flags, positional }) => {
        const released = await (await clientOf(flags)).post<Extract<PoolAnswer, { type: 'released' }>>('/api/v1/pools/release', { pool: positional[0], member: positional[1], ...(flags['reuse'] === true ? { reuse: true } : {}) });
        if (flags['json'] === true) print(released);
        else out(released.reuse ? `gave ${released.member} back to pool ${released.pool} as it is: ready again\n` : `released ${released.member} to pool ${released.pool}: it drains until it restarts\n`);
        return 0;
      },
    },
    'pool members': {
      spec: spec({ min: 1, max: 1, name: 'pool name' }),
      run: async ({ flags, positional }) => {
        const { pools } = await (await clientOf(flags)).get<{ pools: Array<Pool & { members: PoolMemberView[] }> }>('/api/v1/pools');
        const pool = pools.find((p) => p.name === positional[0]);
        if (pool === undefined) throw new PoolNotFoundError(`no pool named ${JSON.stringify(positional[0])} in the catalog (powernode pool list)`);
        if (flags['json'] === true) print({ pool: pool.name, members: pool.members });
        else out(pool.members.length === 0 ? `pool ${pool.name} has no members: label nodes pool=${pool.name} (powernode label set)\n` : `${pool.members.map(describeMember).join('\n')}\n`);
        return 0;
      },
    },
  };
}

/** Thrown when the pool named is not in the catalog. */
export class PoolNotFoundError extends Error {
  override name = 'PoolNotFoundError';
}

function describeMember(member: PoolMemberView): string {
  const record = member.record;
  const claim = member.state === 'claimed' && record?.state === 'claimed' ? `  since ${new Date(record.claimedAt).toISOString()}${record.for === undefined ? '' : ` for ${record.for}`}` : '';
  const since = member.state === 'draining' && record !== undefined ? `  ${record.state} ${new Date(record.at).toISOString()}` : '';
  const unreachable = member.unreachable === true ? '  (unreachable: failure detection holds it down)' : '';
  return `${member.name.padEnd(16)} ${member.state.padEnd(9)} ${member.member}${claim}${since}${unreachable}`;
}
