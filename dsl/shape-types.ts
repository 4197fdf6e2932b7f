/**
 * Shapes in the type system. Where a shape is a literal tuple (`Tensor<[2, 3]>`), result
 * shapes are computed and mismatches are type errors; where it is just `Shape`, everything
 * type-checks and the runtime check (always present) is the judge.
 */
export type Shape = readonly number[];

type IsTuple<S extends Shape> = number extends S['length'] ? false : true;
type Init<S extends Shape> = S extends readonly [...infer I extends number[], number]
  ? I
  : number[];
export type Last<S extends Shape> = S extends readonly [...unknown[], infer L extends number]
  ? L
  : number;
export type SecondLast<S extends Shape> = Last<Init<S>>;

type DimsAgree<A extends number, B extends number> = number extends A
  ? true
  : number extends B
    ? true
    : A extends B
      ? true
      : false;

type BroadcastDim<A extends number, B extends number> = A extends 1
  ? B
  : B extends 1
    ? A
    : number extends A
      ? number
      : number extends B
        ? number
        : A extends B
          ? A
          : never;

// Recursion stops at non-tuples too: TS evaluates this on constraints (plain Shape) when checking
// generics.
type BroadcastTuple<A extends Shape, B extends Shape> = A extends readonly []
  ? [...B]
  : B extends readonly []
    ? [...A]
    : IsTuple<A> extends true
      ? IsTuple<B> extends true
        ? [...BroadcastTuple<Init<A>, Init<B>>, BroadcastDim<Last<A>, Last<B>>]
        : number[]
      : number[];

/** NumPy broadcasting of two shapes, at the type level. */
export type Broadcast<A extends Shape, B extends Shape> =
  IsTuple<A> extends true
    ? IsTuple<B> extends true
      ? Extract<BroadcastTuple<A, B>, Shape>
      : Shape
    : Shape;

type HasNever<T extends readonly unknown[]> = T extends readonly [infer H, ...infer R]
  ? [H] extends [never]
    ? true
    : HasNever<R>
  : false;

/** A branded error type: intersecting an argument with it makes a mismatched call fail `tsc`. */
export interface ShapeError<Message extends string> {
  readonly __shapeError: Message;
}

export type BroadcastCheck<A extends Shape, B extends Shape> =
  Broadcast<A, B> extends infer R extends readonly unknown[]
    ? HasNever<R> extends true
      ? ShapeError<'shapes cannot be broadcast together'>
      : unknown
    : unknown;

export type MatmulShape<A extends Shape, B extends Shape> =
  IsTuple<A> extends true
    ? IsTuple<B> extends true
      ? A extends readonly [number, number]
        ? B extends readonly [number, number]
          ? [A[0], B[1]]
          : Shape
        : A['length'] extends B['length']
          ? [...Init<Init<A>>, SecondLast<A>, Last<B>]
          : Shape
      : Shape
    : Shape;

export type MatmulCheck<A extends Shape, B extends Shape> =
  DimsAgree<Last<A>, SecondLast<B>> extends true
    ? unknown
    : ShapeError<`matmul: inner dimensions ${Last<A>} and ${SecondLast<B>} differ`>;

/** Reverses a tuple (the default transpose). */
export type Reverse<S extends Shape> =
  IsTuple<S> extends true
    ? S extends readonly [infer H extends number, ...infer R extends number[]]
      ? [...Reverse<R>, H]
      : []
    : number[];
