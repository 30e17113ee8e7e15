export * from './swim.ts';
