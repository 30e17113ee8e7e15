export * from './join-string.ts';
export * from './join-protocol.ts';
