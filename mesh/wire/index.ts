export * as s from './shape.ts';
export { ShapeError, type Shape, type Infer } from './shape.ts';
export * from './protocol.ts';
export * from './penalties.ts';
export * from './exchange.ts';
