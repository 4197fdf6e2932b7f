// The IR as the DSL sees it: node types, the builder, graph walks and the op rules.
// (GrngError lives in core/errors.ts: one import path for the one error type.)
export type { DType } from './dtype.js';
export { DTYPES } from './dtype.js';
export type { Node } from './node.js';
export { topoSort } from './node.js';
export type { Primitive, PrimitiveAttrs } from './primitives.js';
export type { Shape } from './shape.js';
export { broadcastShapes, normalizeAxis, shapeSize, shapesEqual } from './shape.js';
export { builder, emit, splatValue, type Builder } from './builder.js';
export { opTable, PRIMITIVES, ruleOf } from '../ops/table.js';
export type { OpRule } from '../ops/rule.js';
