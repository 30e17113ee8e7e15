export * from './authority.ts';
export * from './doc-store.ts';
export * from './record-codec.ts';
export * from './replicator.ts';
export * from './summary.ts';
export * from './sync-protocol.ts';
export * from './seal-coverage.ts';
