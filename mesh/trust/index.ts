export * from './keys.ts';
export * from './operator-auth.ts';
export * from './in-process-verifier.ts';
export * from './seals.ts';
export * from './seal-verifier.ts';
export * from './peer-keys.ts';
export * from './grants.ts';
