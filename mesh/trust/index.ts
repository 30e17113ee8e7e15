export * from './keys.ts';
export * from './operator-auth.ts';
