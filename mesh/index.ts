export * from './ports/index.ts';
export * from './wire/index.ts';
export * from './logger.ts';
export * from './replication/index.ts';
