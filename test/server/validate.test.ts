import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { check, timestampField, usageSchema } from "../../src/server/validate.js";

const NOW = Date.parse("2026-11-23T10:00:00Z");
const DAY_S = 86_400n;
const NOW_S = BigInt(NOW / 1000);

/** usage is a structured Usage as usageFromProto hands it to the schema, with one reading reset at `resetsAt`. */
const usage = (resetsAt: { seconds: bigint; nanos: number }) => ({
  cost_usd: 1,
  input_tokens: 0n,
  output_tokens: 0n,
  cache_creation_input_tokens: 0n,
  cache_read_input_tokens: 0n,
  model_usage: {},
  rate_limits: [{ utilization: 0.5, resets_at: resetsAt }],
  claude_session_id: "",
});

const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("expected a refusal");
};

describe("usageSchema() resets_at", () => {
  it("should take a reset within a year", () => {
    expect(() => check(usageSchema(NOW), usage({ seconds: NOW_S + 5n * 3600n, nanos: 0 }), "usage")).not.toThrow();
  });

  it.each([
    { name: "bad nanos", at: { seconds: NOW_S, nanos: -1 }, message: "nanos must be between 0 and 999999999" },
    {
      name: "a time before 1970",
      at: { seconds: -1n, nanos: 0 },
      message: "must be between 1970-01-01 and a year from now",
    },
    {
      name: "two years ahead",
      at: { seconds: NOW_S + 730n * DAY_S, nanos: 0 },
      message: "must be between 1970-01-01 and a year from now",
    },
    {
      name: "past year 275760",
      at: { seconds: 10n ** 13n, nanos: 0 },
      message: "must be between 1970-01-01 and a year from now",
    },
  ])("should refuse $name with INVALID_ARGUMENT naming the reading", ({ at, message }) => {
    const error = refusal(() => check(usageSchema(NOW), usage(at), "usage"));
    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toMatchObject({ code: Code.InvalidArgument });
    expect((error as ConnectError).rawMessage).toBe(
      `usage.rate_limits[0].resets_at (usage.rateLimits[0].resetsAt): ${message}`,
    );
  });
});

describe("timestampField()", () => {
  it("should read a Timestamp as epoch milliseconds", () => {
    expect(timestampField({ seconds: NOW_S, nanos: 250_000_000 }, "from")).toBe(NOW + 250);
  });

  it.each([
    { name: "bad nanos", at: { seconds: NOW_S, nanos: 1e9 }, message: "nanos must be between 0 and 999999999" },
    {
      name: "a time before 1970",
      at: { seconds: -5n, nanos: 0 },
      message: "must be a time between 1970 and year 275760",
    },
  ])("should refuse $name with INVALID_ARGUMENT naming the field", ({ at, message }) => {
    const error = refusal(() => timestampField(at, "until"));
    expect(error).toMatchObject({ code: Code.InvalidArgument });
    expect((error as ConnectError).rawMessage).toBe(`until: ${message}`);
  });
});
