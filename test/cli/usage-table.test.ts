import { create } from "@bufbuild/protobuf";
import pc from "picocolors";
import { describe, expect, it } from "vitest";
import { GetUsageResponseSchema } from "../../gen/authpool/v1/auth_pool_pb.js";
import { formatCount, renderUsage } from "../../src/cli/usage-table.js";

const plain = pc.createColors(false);
const ts = (iso: string) => ({ seconds: BigInt(Date.parse(iso) / 1000), nanos: 0 });

describe("renderUsage()", () => {
  const res = create(GetUsageResponseSchema, {
    from: ts("2026-11-16T10:00:00Z"),
    to: ts("2026-11-23T10:00:00Z"),
    rows: [
      {
        key: "ci-bot",
        costUsd: 30,
        inputTokens: 1_200_000n,
        outputTokens: 45_000n,
        cacheCreationInputTokens: 2_000n,
        cacheReadInputTokens: 9_000_000n,
        requests: 120,
      },
      { key: "alice", costUsd: 10, inputTokens: 900n, outputTokens: 12n, requests: 3 },
      { key: "(outside the pool)", costUsd: 0, inputTokens: 50n, requests: 1 },
    ],
  });
  const lines = renderUsage(res, { by: "client", colors: plain }).split("\n");
  const rowOf = (key: string) => lines.find((l) => l.startsWith(`│ ${key} `)) ?? "";
  const cells = (line: string) =>
    line
      .split("│")
      .slice(1, -1)
      .map((c) => c.trim());

  it("should head the table with the period and the total", () => {
    expect(lines[0]).toBe("Usage by client · 2026-11-16 10:00Z to 2026-11-23 10:00Z · $40.00 in 124 requests");
    expect(cells(lines[2]!)).toEqual([
      "client",
      "cost",
      "input",
      "output",
      "cache write",
      "cache read",
      "requests",
      "share",
    ]);
  });

  it("should keep the server's order and give each key its figures and share of the cost", () => {
    expect(lines.filter((l) => /^│ \S/.test(l)).map((l) => cells(l)[0])).toEqual([
      "client",
      "ci-bot",
      "alice",
      "(outside the pool)",
      "total",
    ]);
    expect(cells(rowOf("ci-bot"))).toEqual(["ci-bot", "$30.00", "1.2M", "45.0k", "2.0k", "9.0M", "120", "75.0%"]);
    expect(cells(rowOf("alice"))).toEqual(["alice", "$10.00", "900", "12", "0", "0", "3", "25.0%"]);
    expect(cells(rowOf("total"))).toEqual(["total", "$40.00", "1.2M", "45.0k", "2.0k", "9.0M", "124", "100.0%"]);
  });

  it("should leave out the total row for one key and the share when nothing was spent", () => {
    const one = create(GetUsageResponseSchema, { rows: [{ key: "opus", costUsd: 0, inputTokens: 5n, requests: 1 }] });
    const text = renderUsage(one, { by: "model", colors: plain });
    expect(text.split("\n")[0]).toBe("Usage by model · $0.00 in 1 request");
    expect(text).not.toContain("total");
    expect(cells(text.split("\n").find((l) => l.startsWith("│ opus")) ?? "").at(-1)).toBe("");
  });

  it("should say when nothing was recorded", () => {
    const empty = create(GetUsageResponseSchema, { from: ts("2026-11-23T05:00:00Z"), to: ts("2026-11-23T10:00:00Z") });
    expect(renderUsage(empty, { by: "subscription", colors: plain })).toBe(
      "Usage by subscription · 2026-11-23 05:00Z to 2026-11-23 10:00Z · $0.00 in 0 requests\nnothing recorded in this period",
    );
  });
});

describe("formatCount()", () => {
  it.each([
    { count: 0n, text: "0" },
    { count: 999n, text: "999" },
    { count: 1_000n, text: "1.0k" },
    { count: 41_203n, text: "41.2k" },
    { count: 999_949n, text: "999.9k" },
    { count: 999_950n, text: "1.0M" },
    { count: 1_500_000n, text: "1.5M" },
    { count: 2_000_000_000n, text: "2.0B" },
  ])("should render $count as $text", ({ count, text }) => {
    expect(formatCount(count)).toBe(text);
  });
});
