// Random values of a trace line's fields (host/sim/trace.ts, TraceValue), for the tests that check a way of building
// the lines against their text: any string (lone surrogates, quotes, backslashes, control characters), numbers of
// every kind (negative, fractions, -0, NaN, beyond 2^53), bigints.
import fc from "fast-check";
import type { TraceValue } from "../../host/sim/trace.ts";

export const traceValue: fc.Arbitrary<TraceValue> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: fc.constantFrom("a", "0", "x", " ", "/", "\"", "\\", "\n", "\u007f", "~", "é"), maxLength: 20 }),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(-0, 2 ** 53, -(2 ** 53) - 2, 1e21, 0.1, NaN, Infinity),
  fc.bigInt(),
);
