/** One signature to check: Ed25519 over `message` by the 32-byte `publicKey`. */
export interface SignatureCheck {
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * Checks Ed25519 signatures in batches. A port because the fastest way differs by host: a real
 * node spreads a batch over worker threads (one verification costs ~120 µs here), the simulator
 * checks in-process so runs stay deterministic.
 */
export interface SignatureVerifier {
  /** One boolean per check, in order; malformed input is `false`, never an exception. */
  verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]>;
  /** A large batch is coming (e.g. a joining node's first transfer): get ready (start workers). Optional. */
  prepare?(): void;
  close(): Promise<void>;
}
