// Re-exports for benchmarks, plus the system clock (benchmarks run outside the core).
export { DocStore, MemoryLogger, type PeerId, actorPrefixFor } from '../mesh/index.ts';
export { SystemClock as SystemClockForBench } from '../agent/adapters/system-clock.ts';
