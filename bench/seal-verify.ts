// Verifying seals (signed heads) of 1,000 documents from 1,000 writers — the trust issue's
// target is ≤ 100 ms. Run: npm run bench:seals
import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import { WorkerPoolVerifier } from '../agent/adapters/worker-pool-verifier.ts';
import { InProcessVerifier, type Seal, SealVerifier, SeededRandom, type SignatureVerifier, generateKeyPair, signSeal } from '../mesh/index.ts';

const FLEET = '0123456789abcdef0123456789abcdef';
const DOCS = 1_000;
const ROUNDS = 5;

function seals(round: number): Seal[] {
  const random = new SeededRandom(1000 + round);
  return Array.from({ length: DOCS }, (_, i) => {
    const head = createHash('sha256').update(`${round}/${i}`).digest('hex');
    return signSeal(FLEET, `node/writer-${i}`, [head], generateKeyPair(random));
  });
}

async function timeVerify(verifier: SignatureVerifier, batch: Seal[]): Promise<{ ms: number; valid: number }> {
  const sealVerifier = new SealVerifier(verifier, FLEET);
  const started = performance.now();
  const verdicts = await sealVerifier.verify(batch);
  return { ms: performance.now() - started, valid: verdicts.filter(Boolean).length };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const round1 = (value: number): number => Math.round(value * 10) / 10;

const batches = Array.from({ length: ROUNDS + 1 }, (_, r) => seals(r));
const inProcess: number[] = [];
for (let r = 1; r <= ROUNDS; r++) inProcess.push((await timeVerify(new InProcessVerifier(), batches[r]!)).ms);

const pool = new WorkerPoolVerifier();
const coldStart = await timeVerify(pool, batches[0]!);
const warm: number[] = [];
let valid = 0;
for (let r = 1; r <= ROUNDS; r++) {
  const result = await timeVerify(pool, batches[r]!);
  warm.push(result.ms);
  valid = result.valid;
}
const cached = new SealVerifier(pool, FLEET);
await cached.verify(batches[1]!);
const cachedStart = performance.now();
await cached.verify(batches[1]!);
const cachedMs = performance.now() - cachedStart;
await pool.close();

process.stdout.write(
  `${JSON.stringify(
    {
      benchmark: 'seal-verify',
      date: new Date().toISOString(),
      cpus: cpus().length,
      documents: DOCS,
      validOfLastBatch: valid,
      inProcessMsMedian: round1(median(inProcess)),
      workerPoolFirstBatchMsIncludingWorkerStart: round1(coldStart.ms),
      workerPoolMsMedian: round1(median(warm)),
      cachedRepeatMs: round1(cachedMs),
    },
    null,
    2,
  )}\n`,
);
