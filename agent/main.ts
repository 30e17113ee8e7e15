// `npm start`: a node on ./data (or --data), creating a fleet there on first run.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_API, reportError, runNodeUntilSignal, startFromFlags } from './cli.ts';
import { parseArgs } from './cli-args.ts';
import { dataDir } from './data-dir.ts';
import { initFleet } from './fleet-init.ts';
import { StderrLogger } from './stderr-logger.ts';

async function run(): Promise<number> {
  const args = parseArgs(process.argv.slice(2), {
    flags: { data: 'string', listen: 'list', api: 'string', join: 'string', name: 'string' },
    positional: { min: 0, max: 0, name: '' },
  });
  const flags: Record<string, string | string[] | boolean | undefined> = {
    ...args.flags,
    data: String(args.flags['data'] ?? 'data'),
    api: String(args.flags['api'] ?? DEFAULT_API),
  };
  const dir = dataDir(resolve(String(flags['data'])));
  let created = false;
  if (!existsSync(dir.stateDir) && flags['join'] === undefined) {
    const result = await initFleet(dir, { name: String(flags['name'] ?? 'powernode'), log: new StderrLogger() });
    process.stderr.write(`Created fleet ${result.fleetId} in ${dir.root}.\nOperator key: ${result.operatorKey} (keep it safe). Root key: ${result.rootKey} (move it offline).\n`);
    created = true;
  }
  const running = await startFromFlags(flags);
  const key = dir.operatorKeyFile;
  process.stderr.write(
    `\nNode ${running.ready.peerId} is ${created ? 'up, founding a new fleet' : 'up'}. API: ${running.ready.api}\n` +
      `Fleet status:   npx powernode status --api ${running.ready.api} --key ${key}\n` +
      `Add a node:     npx powernode token create --api ${running.ready.api} --key ${key}\n` +
      `  then on it:   npx powernode node start --data DIR --join <the join string>\n\n`,
  );
  return runNodeUntilSignal(running);
}

run().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = reportError(error);
  },
);
