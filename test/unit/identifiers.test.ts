import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import { assertId, assertSymbol, idSchema, symbolSchema } from "../../src/domain/identifiers.js";

/** assertId and assertSymbol answer as their schemas do, the matching case without zod. */
describe("identifier checks", () => {
  const values: unknown[] = [
    "AAPL",
    "BRK.B",
    "T-1_x",
    "lower",
    "",
    "A B",
    "x".repeat(32),
    "X".repeat(33),
    "i".repeat(64),
    "i".repeat(65),
    "a\nb",
    "é",
    'x") |> drop() //',
    42,
    null,
    undefined,
    ["AAPL"],
  ];

  it.each(values.map((v) => [JSON.stringify(v) ?? String(v), v]))("%s", (_name, value) => {
    for (const [check, schema] of [
      [(v: unknown) => assertId(v, "trade_id"), idSchema],
      [(v: unknown) => assertSymbol(v, "symbol"), symbolSchema],
    ] as const) {
      if (schema.safeParse(value).success) {
        expect(check(value)).toBe(value);
      } else {
        expect(() => check(value)).toThrow(ValidationError);
      }
    }
  });

  it("names the field in the error", () => {
    expect(() => assertId("a b", "trade_id")).toThrow(/trade_id/);
    expect(() => assertSymbol("aapl", "tags.symbol")).toThrow(/tags\.symbol/);
  });
});
