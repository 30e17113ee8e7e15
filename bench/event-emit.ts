// The cost of one event emission as a node's bucket for the day fills (5,000 entries at most):
// an emission is a change to that one document, which grows all day (pool claims write two).
// Run: npm run bench:events            (EVENTS=N to change the 5,000)
// Prints one JSON object: mean ms per emission over the first, middle and last 500.
import { cpus, loadavg } from 'node:os';
import { EVENTS_PER_BUCKET_MAX } from '../crdt-schema/index.ts';
import { EventLog, MemoryLogger, SeededRandom } from '../mesh/index.ts';
import { MiniFleet, testIdentity } from '../test/helpers/mini-fleet.ts';

const EVENTS = Number(process.env['EVENTS'] ?? EVENTS_PER_BUCKET_MAX);
const fleet = new MiniFleet();
const node = await fleet.add(0);
const log = new EventLog({ store: node.store, clock: fleet.clock, random: new SeededRandom(0), log: new MemoryLogger(), self: node.peer, identity: testIdentity(0), isWriter: () => true });
log.start();
const times: number[] = [];
let written = 0;
for (let i = 0; i < EVENTS; i++) {
  const started = performance.now();
  const { written: ok } = await log.emit({ kind: 'pool.claimed', severity: 'low', subject: node.peer, detail: 'n3 claimed from pool bench', payload: { pool: 'bench', member: node.peer, claimId: `claim-${i}` } });
  times.push(performance.now() - started);
  if (ok) written++;
}
const mean = (values: readonly number[]): number => Math.round((values.reduce((sum, v) => sum + v, 0) / Math.max(1, values.length)) * 100) / 100;
const middle = Math.floor(EVENTS / 2);
process.stdout.write(
  `${JSON.stringify({ benchmark: 'event-emit', date: new Date().toISOString(), cpus: cpus().length, events: EVENTS, written, meanMs: { first500: mean(times.slice(0, 500)), middle500: mean(times.slice(middle - 250, middle + 250)), last500: mean(times.slice(-500)) }, loadAverage1m: Math.round(loadavg()[0]! * 10) / 10 }, null, 2)}\n`,
);
process.exit(0);
