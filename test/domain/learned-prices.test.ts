import { describe, expect, it } from "vitest";
import {
  type Command,
  type PoolEvent,
  Pool,
  applyEvent,
  createPoolState,
  learnPrice,
  parseTranscriptLine,
  priceTokens,
  ratesOf,
} from "../../src/domain/index.js";
import type { ModelUsage, TranscriptUsageRow } from "../../src/domain/index.js";
import { granted, usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-12-02T10:00:00Z");
const MINUTE = 60_000;

// One request of the real tool-use run: the CLI priced it at $0.004711.
const REQUEST = { inputTokens: 3, outputTokens: 12, cacheCreationInputTokens: 1234, cacheReadInputTokens: 15000 };
const CLI_USD = 0.004711;

function modelUsage(costUsd: number, tokens = REQUEST): ModelUsage {
  return { ...tokens, costUsd };
}

function row(key: string, model: string, at: number, extra: Partial<TranscriptUsageRow> = {}): TranscriptUsageRow {
  return {
    kind: "usage",
    key,
    at,
    model,
    tokens: { ...REQUEST },
    costUsd: priceTokens(model, REQUEST, undefined).costUsd,
    costSource: "priced",
    sidechain: false,
    ...extra,
  };
}

function allocate(p: Pool, sessionId: string, at: number): PoolEvent[] {
  const { events, result } = p.run(
    { kind: "allocate", sessionId, priority: "normal", model: "sonnet", estimatedTokens: 1000 },
    at,
  );
  granted(result);
  return events;
}

function pool(): Pool {
  return new Pool(createPoolState(["a"]), poolSettings([subscriptionSettings("a", {})]));
}

function external(p: Pool): { costUsd: number; estimatedUsd: number } {
  const buckets = p.state.subscriptions.get("a")!.buckets;
  return {
    costUsd: buckets.reduce((s, b) => s + (b.externalCostUsd ?? 0), 0),
    estimatedUsd: buckets.reduce((s, b) => s + (b.externalEstimatedUsd ?? 0), 0),
  };
}

describe("learnPrice() and priceTokens()", () => {
  it("learns a scale that gives back the CLI's figure for the same tokens", () => {
    const learned = learnPrice("claude-sonnet-5-5", modelUsage(CLI_USD), T0)!;
    expect(learned.at).toBe(T0);
    expect(priceTokens("claude-sonnet-5-5", REQUEST, learned)).toEqual({
      costUsd: expect.closeTo(CLI_USD, 12),
      basis: "cli",
    });
    // Two requests cost twice as much.
    const two = { inputTokens: 6, outputTokens: 24, cacheCreationInputTokens: 2468, cacheReadInputTokens: 30000 };
    expect(priceTokens("claude-sonnet-5-5", two, learned).costUsd).toBeCloseTo(2 * CLI_USD, 12);
  });

  it.each([
    { name: "no cost (the CLI did not know the price either)", usage: modelUsage(0) },
    {
      name: "no tokens",
      usage: modelUsage(0.01, {
        inputTokens: 0,
        outputTokens: 0,
        cacheCreationInputTokens: 0,
        cacheReadInputTokens: 0,
      }),
    },
    { name: "a cost that is not finite", usage: modelUsage(Number.POSITIVE_INFINITY) },
    { name: "a negative cost", usage: modelUsage(-1) },
  ])("learns nothing from $name", ({ usage: u }) => {
    expect(learnPrice("claude-sonnet-5-5", u, T0)).toBeUndefined();
  });

  it.each([
    { model: "claude-sonnet-4-5-20250929", basis: "list" },
    { model: "claude-sonnet-5-5", basis: "estimate" },
    { model: "gpt-4o", basis: "estimate" },
  ])("prices $model without a learned price on the basis $basis", ({ model, basis }) => {
    expect(priceTokens(model, REQUEST, undefined).basis).toBe(basis);
    expect(ratesOf(model, undefined).basis).toBe(basis);
  });

  it("scales every rate by what was learned", () => {
    const { price, basis } = ratesOf("claude-sonnet-5-5", { scale: 0.5, at: T0 });
    expect(basis).toBe("cli");
    expect(price).toEqual({ inputPerMTok: 1.5, outputPerMTok: 7.5, cacheWritePerMTok: 1.875, cacheReadPerMTok: 0.15 });
  });
});

describe("parseTranscriptLine() on cost-state rows", () => {
  const line = (extra: Record<string, unknown>) =>
    JSON.stringify({
      type: "cost-state",
      sessionId: "5936d130-09ba-4f4b-9e1f-be173e85a66d",
      totalCostUSD: 0.009422,
      totalDuration: 643,
      startTime: 1796210657791,
      modelUsage: {
        "claude-sonnet-5-5": {
          inputTokens: 6,
          outputTokens: 24,
          cacheReadInputTokens: 30000,
          cacheCreationInputTokens: 2468,
          costUSD: 0.009422,
        },
      },
      hasUnknownModelCost: false,
      ...extra,
    });

  it("reads the CLI's figures per model, and when", () => {
    expect(parseTranscriptLine(line({}), { defaultTimeZone: "UTC" })).toEqual({
      kind: "costs",
      sessionId: "5936d130-09ba-4f4b-9e1f-be173e85a66d",
      at: 1796210657791 + 643,
      totalCostUsd: 0.009422,
      models: {
        "claude-sonnet-5-5": {
          inputTokens: 6,
          outputTokens: 24,
          cacheReadInputTokens: 30000,
          cacheCreationInputTokens: 2468,
          costUsd: 0.009422,
        },
      },
    });
  });

  it.each([
    { name: "a row the CLI says holds a model it could not price", extra: { hasUnknownModelCost: true } },
    { name: "a row without modelUsage", extra: { modelUsage: undefined } },
    { name: "a modelUsage that is an array", extra: { modelUsage: [] } },
    { name: "a modelUsage of the synthetic model only", extra: { modelUsage: { "<synthetic>": { costUSD: 1 } } } },
  ])("skips $name", ({ extra }) => {
    expect(parseTranscriptLine(line(extra), { defaultTimeZone: "UTC" })).toBeUndefined();
  });
});

describe("Pool: prices the CLI taught", () => {
  it("learns from a report's modelUsage and prices later transcript rows of that model by it", () => {
    const p = pool();
    const run = (c: Command, at: number) => p.run(c, at);
    allocate(p, "s1", T0);
    run(
      {
        kind: "report",
        sessionId: "s1",
        requestId: "r1",
        report: usage(CLI_USD, { models: { "claude-sonnet-5-5": modelUsage(CLI_USD) } }),
      },
      T0 + MINUTE,
    );
    expect(p.state.prices.get("claude-sonnet-5-5")).toEqual({ scale: expect.any(Number), at: T0 + MINUTE });

    run(
      { kind: "reconcile", subscriptionId: "a", rows: [row("m1:r1", "claude-sonnet-5-5", T0 + 2 * MINUTE)] },
      T0 + 30 * MINUTE,
    );
    expect(external(p).costUsd).toBeCloseTo(CLI_USD, 12);
    expect(external(p).estimatedUsd).toBe(0);
  });

  it("counts a row priced by the table as an estimate, and takes it back out when the row proves to be the pool's", () => {
    const p = pool();
    const estimate = priceTokens("claude-sonnet-5-5", REQUEST, undefined).costUsd;
    p.run(
      { kind: "reconcile", subscriptionId: "a", rows: [row("m1:r1", "claude-sonnet-5-5", T0, { sessionId: "late" })] },
      T0 + 30 * MINUTE,
    );
    expect(external(p)).toEqual({ costUsd: expect.closeTo(estimate, 12), estimatedUsd: expect.closeTo(estimate, 12) });

    // A late report names the Claude session: its rows were the pool's own run.
    allocate(p, "s1", T0 + 31 * MINUTE);
    p.run(
      { kind: "report", sessionId: "s1", requestId: "r1", report: usage(0.01, { claudeSessionId: "late" }) },
      T0 + 32 * MINUTE,
    );
    expect(external(p)).toEqual({ costUsd: 0, estimatedUsd: 0 });
  });

  it("keeps a line's own costUSD, which is the CLI's figure", () => {
    const p = pool();
    p.run(
      {
        kind: "reconcile",
        subscriptionId: "a",
        rows: [row("m1:r1", "claude-nova-1", T0, { costUsd: 0.5, costSource: "line" })],
      },
      T0 + 30 * MINUTE,
    );
    expect(external(p)).toEqual({ costUsd: 0.5, estimatedUsd: 0 });
  });

  it("journals a price once: the same cost-state read again is no news", () => {
    const p = pool();
    const costs = {
      kind: "costs" as const,
      sessionId: "x",
      at: T0,
      totalCostUsd: CLI_USD,
      models: { "claude-sonnet-5-5": modelUsage(CLI_USD) },
    };
    const first = p.run({ kind: "reconcile", subscriptionId: "a", rows: [costs] }, T0 + MINUTE);
    expect(first.events.map((e) => e.type)).toEqual(["transcript_read"]);
    const again = p.run({ kind: "reconcile", subscriptionId: "a", rows: [costs] }, T0 + 2 * MINUTE);
    expect(again.events).toEqual([]);
  });

  it("replays to the same prices", () => {
    const p = pool();
    const events: PoolEvent[] = [];
    const run = (c: Command, at: number) => events.push(...p.run(c, at).events);
    events.push(...allocate(p, "s1", T0));
    run(
      {
        kind: "report",
        sessionId: "s1",
        requestId: "r1",
        report: usage(0.01, { models: { "claude-opus-9": modelUsage(0.02) } }),
      },
      T0 + MINUTE,
    );
    run(
      {
        kind: "reconcile",
        subscriptionId: "a",
        rows: [
          {
            kind: "costs",
            at: T0 + 2 * MINUTE,
            totalCostUsd: CLI_USD,
            models: { "claude-sonnet-5-5": modelUsage(CLI_USD) },
          },
        ],
      },
      T0 + 3 * MINUTE,
    );
    const replayed = createPoolState(["a"]);
    for (const e of events) applyEvent(replayed, e);
    expect([...replayed.prices.keys()].sort()).toEqual(["claude-opus-9", "claude-sonnet-5-5"]);
    expect(replayed.prices).toEqual(p.state.prices);
  });
});
