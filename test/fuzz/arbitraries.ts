/**
 * Adversarial value generators for the fuzz suites, and the small oracles
 * that say which of those values a field must refuse. The oracles restate
 * the request rules independently of src/server/validate.ts.
 */
import fc from "fast-check";

/** CONTROL matches C0 controls, DEL and C1 controls: never acceptable in ids, model names or keys. */
export const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Strings that broke parsers somewhere: control characters, bidi, combining marks, lone surrogates, look-alikes. */
export const SPECIAL_STRINGS = [
  "",
  " ",
  "\0",
  "a\0b",
  "\n",
  "s1\n",
  "\r\n",
  "\t",
  "\u001b[31mred\u001b[0m",
  "\u007f",
  "\u0085",
  "\u009b",
  "\u200b",
  "\u202eevil",
  "\u2066x\u2069",
  "\ufeff",
  "\ud800",
  "\udfff",
  "😀",
  "𝕏𝕐",
  "e\u0301\u0301\u0301",
  "مرحبا",
  "שָׁלוֹם",
  "ﷺ",
  "%00",
  "../..",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4j lookup, as an attacker would send it
  "${jndi:ldap://x}",
  "' OR 1=1 --",
  "<script>",
  "NaN",
  "-1",
  "1e400",
  "__proto__",
  "constructor",
  "toString",
  "null",
  "sub1",
  "sub1 ",
  "SUB1",
  "sub1\0",
];

const asciiChar = (min: number, max: number) => fc.integer({ min, max }).map((c) => String.fromCharCode(c));

/** printableId: ids the server accepts (printable ASCII without spaces). */
export const printableId = fc.string({ unit: asciiChar(0x21, 0x7e), minLength: 1, maxLength: 40 });

/** longString: one character repeated to lengths just under, at and over the limits. */
export const longString = fc
  .tuple(
    fc.constantFrom("a", "Z", "é", "😀", "\0", "x ", "\u0301"),
    fc.constantFrom(63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 65_536),
  )
  .map(([c, n]) => c.repeat(n));

/** nastyString: the special strings, full-unicode and grapheme strings, control runs, long strings, ids with one bad character. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SPECIAL_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: asciiChar(0, 0x1f), minLength: 1, maxLength: 4 }) },
  { weight: 1, arbitrary: longString },
  {
    weight: 2,
    arbitrary: fc
      .tuple(printableId, fc.constantFrom(...SPECIAL_STRINGS.filter((s) => s !== "")), fc.nat())
      .map(([id, bad, at]) => {
        const i = at % (id.length + 1);
        return id.slice(0, i) + bad + id.slice(i);
      }),
  },
);

/** idArb: mostly ids that look fine, often adversarial ones. */
export const idArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: printableId },
  { weight: 4, arbitrary: nastyString },
);

/** chars counts characters as the server's length limits do: code points, not UTF-16 units. */
export function chars(s: string): number {
  return [...s].length;
}

/** isSessionId restates the session id rule: 1-256 printable ASCII characters, no spaces. */
export function isSessionId(s: string): boolean {
  return /^[\x21-\x7e]{1,256}$/.test(s);
}

/** isSubscriptionId restates the config's id rule. */
export function isSubscriptionId(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(s);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** int64Arb: int64 extremes, the 1e12 plausibility edge, 2^53 precision edges, and plain small counts. */
export const int64Arb: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 0n, max: 1_000_000n }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0n,
      -1n,
      1n,
      INT64_MAX,
      INT64_MIN,
      2n ** 53n,
      2n ** 53n + 1n,
      10n ** 12n,
      10n ** 12n + 1n,
      10n ** 12n - 1n,
    ),
  },
  { weight: 1, arbitrary: fc.bigInt({ min: INT64_MIN, max: INT64_MAX }) },
);

/** tokensOk restates the token rule: 0 to 1e12. */
export function tokensOk(n: bigint): boolean {
  return n >= 0n && n <= 10n ** 12n;
}

/** EDGE_DOUBLES: the doubles a number check gets wrong. */
export const EDGE_DOUBLES = [
  0,
  -0,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  -Number.MIN_VALUE,
  Number.EPSILON,
  -1,
  -1e-300,
  1e300,
  100_000,
  100_000.00000001,
  99_999.99,
  10,
  10.000001,
  2 ** 53,
  -(2 ** 53),
];

/** costArb: mostly plausible costs, often edge doubles. */
export const costArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: 0, max: 5, noNaN: true }) },
  { weight: 2, arbitrary: fc.constantFrom(...EDGE_DOUBLES) },
  { weight: 1, arbitrary: fc.double() },
);

/** costOk restates the cost rule: finite, >= 0 (-0 included), <= 100000. */
export function costOk(n: number): boolean {
  return Number.isFinite(n) && n >= 0 && n <= 100_000;
}

/** utilizationArb: 0-1 fractions, "unknown" negatives, and edge doubles. */
export const utilizationArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 5, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) },
  { weight: 1, arbitrary: fc.constant(-1) },
  { weight: 2, arbitrary: fc.constantFrom(...EDGE_DOUBLES) },
  { weight: 1, arbitrary: fc.double() },
);

/** utilizationOk restates the reading rule: finite and <= 10 (negative means unknown). */
export function utilizationOk(n: number): boolean {
  return Number.isFinite(n) && n <= 10;
}

/** bigintJson renders a value as JSON with bigints as strings (proto3 JSON for int64). */
export function bigintJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}
