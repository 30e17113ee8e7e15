export * from './ports/index.ts';
export * from './wire/index.ts';
export * from './logger.ts';
export * from './replication/index.ts';
export * from './trust/index.ts';
export * from './join/index.ts';
export * from './keeper.ts';
export * from './fleet-node.ts';
