// Worker thread for WorkerPoolVerifier: checks Ed25519 signatures with node:crypto.
// Plain JavaScript on purpose: a worker that loaded TypeScript would carry its own type stripper.
import { createPublicKey, verify } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const SPKI_PREFIX = Buffer.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
const keys = new Map();

function check(publicKey, message, signature) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const id = Buffer.from(publicKey).toString('base64');
    let key = keys.get(id);
    if (key === undefined) {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
      if (keys.size > 10_000) keys.clear();
      keys.set(id, key);
    }
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

parentPort.on('message', ({ id, checks }) => {
  parentPort.postMessage({ id, results: checks.map((c) => check(c.publicKey, c.message, c.signature)) });
});
