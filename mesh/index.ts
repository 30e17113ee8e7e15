export * from './ports/index.ts';
export * from './wire/index.ts';
