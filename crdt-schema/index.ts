export * from './ids.ts';
export * from './schema.ts';
export * from './plain.ts';
export * from './labels.ts';
export * from './fleet-doc.ts';
export * from './node-doc.ts';
export * from './membership.ts';
export * from './decisions.ts';
