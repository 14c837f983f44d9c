import { describe, expect, it } from "vitest";
import {
  type ClientSettings,
  type Command,
  type PoolEvent,
  Pool,
  applyEvent,
  createPoolState,
  usageBy,
} from "../../src/domain/index.js";
import type { Priority } from "../../src/domain/index.js";
import { usage } from "../support/pool-driver.js";
import { poolSettings, subscriptionSettings } from "../support/settings.js";

const T0 = Date.parse("2026-12-02T10:00:00Z");
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function client(over: Partial<ClientSettings> = {}): ClientSettings {
  return { weight: 1, fallback: true, ...over };
}

function pool(clients: Record<string, ClientSettings>, over: { fallback?: boolean; maxSessions?: number } = {}): Pool {
  const subs = ["a", "b"].map((id) =>
    subscriptionSettings(id, { maxSessions: over.maxSessions ?? 5, weeklyBudgetUsd: 1000, fiveHourBudgetUsd: 100 }),
  );
  return new Pool(
    createPoolState(["a", "b"]),
    poolSettings(subs, { clients, fallback: { enabled: over.fallback ?? true, provider: "anthropic-api" } }),
  );
}

function allocate(
  p: Pool,
  sessionId: string,
  who: string | undefined,
  at = T0,
  extra: { model?: string; priority?: Priority } = {},
) {
  const cmd: Command = {
    kind: "allocate",
    sessionId,
    priority: extra.priority ?? "normal",
    model: extra.model ?? "",
    estimatedTokens: 0,
    ...(who !== undefined ? { client: who } : {}),
  };
  return p.run(cmd, at);
}

function spend(p: Pool, sessionId: string, costUsd: number, at: number, requestId = `${sessionId}-${at}`) {
  return p.run({ kind: "report", sessionId, requestId, report: usage(costUsd) }, at);
}

describe("client limits", () => {
  it.each([
    { name: "below the weekly budget", spent: 39.99, limit: { weeklyUsd: 40 }, granted: true },
    { name: "at the weekly budget", spent: 40, limit: { weeklyUsd: 40 }, granted: false, kind: "weekly_usd" },
    { name: "above the weekly budget", spent: 55, limit: { weeklyUsd: 40 }, granted: false, kind: "weekly_usd" },
    { name: "below the 5-hour budget", spent: 9, limit: { fiveHourUsd: 10 }, granted: true },
    { name: "at the 5-hour budget", spent: 10, limit: { fiveHourUsd: 10 }, granted: false, kind: "five_hour_usd" },
  ])("$name: granted $granted", ({ spent, limit, granted, kind }) => {
    const p = pool({ bot: client(limit) });
    allocate(p, "s1", "bot");
    spend(p, "s1", spent, T0 + MINUTE);
    const { result, events } = allocate(p, "s2", "bot", T0 + 2 * MINUTE);
    if (granted) {
      expect(result.kind).toBe("granted");
      return;
    }
    expect(result).toMatchObject({ kind: "fallback", clientLimit: { client: "bot", kind } });
    if (result.kind === "fallback")
      expect(result.reason).toMatch(/^client bot: spent \$\d+\.\d\d in (7 days|5 hours), its limit is/);
    expect(events).toEqual([
      expect.objectContaining({ type: "fallback_used", client: "bot", clientLimit: expect.objectContaining({ kind }) }),
    ]);
  });

  it("lets the 5-hour budget come back after five hours, the weekly one after a week", () => {
    const p = pool({ bot: client({ fiveHourUsd: 10, weeklyUsd: 50 }) });
    allocate(p, "s1", "bot");
    spend(p, "s1", 12, T0 + MINUTE);
    expect(allocate(p, "s2", "bot", T0 + 2 * MINUTE).result).toMatchObject({ clientLimit: { kind: "five_hour_usd" } });
    // Whole hours: the hour the dollars were spent in counts until it is more than 5 hours old.
    expect(allocate(p, "s3", "bot", T0 + 6 * HOUR + MINUTE).result.kind).toBe("granted");
    spend(p, "s3", 45, T0 + 6 * HOUR + 2 * MINUTE);
    expect(allocate(p, "s4", "bot", T0 + 12 * HOUR).result).toMatchObject({ clientLimit: { kind: "weekly_usd" } });
    expect(allocate(p, "s5", "bot", T0 + 7 * 24 * HOUR + 7 * HOUR).result.kind).toBe("granted");
  });

  it("caps concurrent sessions and the share of the pool's slots", () => {
    const p = pool({ few: client({ maxSessions: 2 }), half: client({ share: 0.5 }) });
    expect(allocate(p, "f1", "few").result.kind).toBe("granted");
    expect(allocate(p, "f2", "few").result.kind).toBe("granted");
    expect(allocate(p, "f3", "few").result).toMatchObject({ kind: "fallback", clientLimit: { kind: "max_sessions" } });
    // A session it holds resumes whatever its limits say.
    expect(allocate(p, "f1", "few").result).toMatchObject({ kind: "granted", resumed: true });
    p.run({ kind: "release", sessionId: "f1" }, T0);
    expect(allocate(p, "f4", "few").result.kind).toBe("granted");
    // 10 slots in the pool: half of them is 5.
    for (let i = 0; i < 5; i++) expect(allocate(p, `h${i}`, "half").result.kind).toBe("granted");
    expect(allocate(p, "h5", "half").result).toMatchObject({
      clientLimit: { kind: "share", detail: expect.stringContaining("of the pool's 10 session slots") },
    });
  });

  it.each([
    { name: "a denied family", limit: { denyModels: ["opus"] }, model: "claude-opus-4-5", granted: false },
    {
      name: "another family than the denied one",
      limit: { denyModels: ["opus"] },
      model: "claude-sonnet-4-5",
      granted: true,
    },
    {
      name: "a model outside the allowed ones",
      limit: { allowModels: ["haiku", "sonnet"] },
      model: "opus",
      granted: false,
    },
    { name: "an allowed model", limit: { allowModels: ["haiku", "sonnet"] }, model: "claude-haiku-4-5", granted: true },
    { name: "no model named", limit: { allowModels: ["haiku"] }, model: "", granted: true },
  ])("models: $name is granted $granted", ({ limit, model, granted }) => {
    const p = pool({ bot: client(limit) });
    const { result } = allocate(p, "s1", "bot", T0, { model });
    if (granted) expect(result.kind).toBe("granted");
    else
      expect(result).toMatchObject({
        kind: "fallback",
        clientLimit: { kind: "model", detail: expect.stringContaining(model) },
      });
  });

  it("refuses with RESOURCE_EXHAUSTED naming the client when its fallback is off, or the pool's", () => {
    const p = pool({ bot: client({ maxSessions: 1, fallback: false }) });
    allocate(p, "s1", "bot");
    const { result, events } = allocate(p, "s2", "bot");
    expect(result).toMatchObject({
      kind: "rejected",
      code: "resource_exhausted",
      clientLimit: { client: "bot", kind: "max_sessions" },
    });
    expect(events).toEqual([
      expect.objectContaining({
        type: "client_limited",
        sessionId: "s2",
        clientLimit: expect.objectContaining({ client: "bot", kind: "max_sessions" }),
      }),
    ]);
    const closed = pool({ bot: client({ maxSessions: 1 }) }, { fallback: false });
    allocate(closed, "s1", "bot");
    expect(allocate(closed, "s2", "bot").result).toMatchObject({
      kind: "rejected",
      message: expect.stringContaining("client bot"),
    });
  });

  it("announces a refusal once per client and limit, again after the client was placed or another limit refused it", () => {
    const p = pool({
      bot: client({ maxSessions: 1, denyModels: ["opus"], fallback: false }),
      other: client({ maxSessions: 1, fallback: false }),
    });
    const limited = (r: ReturnType<typeof allocate>) =>
      r.events
        .filter((e) => e.type === "client_limited")
        .map((e) => (e.type === "client_limited" ? e.clientLimit : {}));
    allocate(p, "s1", "bot");
    expect(limited(allocate(p, "s2", "bot"))).toEqual([
      expect.objectContaining({ client: "bot", kind: "max_sessions" }),
    ]);
    // A client that keeps asking writes nothing more: refused, but no event per call.
    for (let i = 0; i < 5; i++) {
      const again = allocate(p, `again-${i}`, "bot", T0 + i * MINUTE);
      expect(again.result).toMatchObject({ kind: "rejected", code: "resource_exhausted" });
      expect(again.events).toEqual([]);
    }
    // Another client's refusal is its own news.
    allocate(p, "o1", "other");
    expect(limited(allocate(p, "o2", "other"))).toEqual([expect.objectContaining({ client: "other" })]);
    // Another limit of the same client is news too, and then the first one again.
    expect(limited(allocate(p, "opus-1", "bot", T0, { model: "opus" }))).toEqual([
      expect.objectContaining({ kind: "model" }),
    ]);
    expect(limited(allocate(p, "s3", "bot"))).toEqual([expect.objectContaining({ kind: "max_sessions" })]);
    expect(allocate(p, "s4", "bot").events).toEqual([]);
    // Placed again (a session ended, the next one granted): its next refusal is announced.
    p.run({ kind: "release", sessionId: "s1" }, T0 + HOUR);
    expect(allocate(p, "s5", "bot", T0 + HOUR).result.kind).toBe("granted");
    expect(p.state.clientsLimited.has("bot")).toBe(false);
    expect(limited(allocate(p, "s6", "bot", T0 + HOUR))).toEqual([expect.objectContaining({ kind: "max_sessions" })]);
    expect(p.state.clientsLimited).toEqual(
      new Map([
        ["other", "max_sessions"],
        ["bot", "max_sessions"],
      ]),
    );
  });

  it("lowers a priority above the client's ceiling", () => {
    const p = pool({ batch: client({ maxPriority: "low" }) });
    const { events } = allocate(p, "s1", "batch", T0, { priority: "high" });
    expect(events[0]).toMatchObject({ type: "session_allocated", priority: "low", client: "batch" });
    expect(p.state.sessions.get("s1")).toMatchObject({ priority: "low", client: "batch" });
  });

  it("limits nobody without settings: the default client and unknown ones", () => {
    const p = pool({ bot: client({ maxSessions: 1 }) }, { maxSessions: 3 });
    for (let i = 0; i < 6; i++)
      expect(allocate(p, `d${i}`, i % 2 === 0 ? undefined : "someone").result.kind).toBe("granted");
    expect(p.state.clientSessions).toEqual(
      new Map([
        ["default", 3],
        ["someone", 3],
      ]),
    );
  });

  it("refuses a call that waits, with no failover, when its limit sends it to the paid API otherwise", () => {
    const p = pool({ bot: client({ denyModels: ["opus"] }) });
    const { result, events } = p.run(
      {
        kind: "allocate",
        sessionId: "s1",
        priority: "normal",
        model: "opus",
        estimatedTokens: 0,
        client: "bot",
        wait: true,
      },
      T0,
    );
    expect(result).toMatchObject({ kind: "rejected", code: "resource_exhausted", clientLimit: { kind: "model" } });
    expect(events.map((e) => e.type)).toEqual(["client_limited"]);
  });

  it("answers unavailable without a change when the caller waits and nothing is free", () => {
    const p = pool({}, { maxSessions: 1 });
    allocate(p, "s1", "x");
    allocate(p, "s2", "x");
    const { result, events } = p.run(
      { kind: "allocate", sessionId: "s3", priority: "normal", model: "", estimatedTokens: 0, client: "x", wait: true },
      T0,
    );
    expect(result).toMatchObject({ kind: "unavailable", sessionId: "s3" });
    expect(events).toEqual([]);
    expect(p.state.sessions.has("s3")).toBe(false);
  });
});

describe("the usage ledger", () => {
  it("books use by client, subscription and model, and keeps budgets across a replay", () => {
    const p = pool({ bot: client({ weeklyUsd: 10 }) });
    const events: PoolEvent[] = [];
    const run = (c: Command, at: number) => events.push(...p.run(c, at).events);
    run(
      { kind: "allocate", sessionId: "b1", priority: "normal", model: "opus", estimatedTokens: 0, client: "bot" },
      T0,
    );
    run(
      { kind: "allocate", sessionId: "p1", priority: "normal", model: "sonnet", estimatedTokens: 0, client: "alice" },
      T0,
    );
    const models = {
      "claude-opus-4-5": {
        inputTokens: 10,
        outputTokens: 5,
        cacheCreationInputTokens: 0,
        cacheReadInputTokens: 0,
        costUsd: 8,
      },
      "claude-haiku-4-5": {
        inputTokens: 1,
        outputTokens: 1,
        cacheCreationInputTokens: 0,
        cacheReadInputTokens: 0,
        costUsd: 1,
      },
    };
    run({ kind: "report", sessionId: "b1", requestId: "1", report: usage(10, { models }) }, T0 + MINUTE);
    run({ kind: "report", sessionId: "p1", requestId: "1", report: usage(2) }, T0 + MINUTE);
    const keys = (group: "client" | "subscription" | "model") =>
      usageBy(p.state, group, T0 - HOUR, T0 + HOUR).map((r) => [r.key, Math.round(r.costUsd * 100) / 100]);
    expect(keys("client")).toEqual([
      ["bot", 10],
      ["alice", 2],
    ]);
    // The opus and haiku figures of the run, the dollar no model figure covers on the session's model hint.
    expect(keys("model")).toEqual([
      ["claude-opus-4-5", 8],
      ["sonnet", 2],
      ["claude-haiku-4-5", 1],
      ["opus", 1],
    ]);
    expect(keys("subscription").reduce((s, [, c]) => s + (c as number), 0)).toBe(12);
    const refused = allocate(p, "b2", "bot", T0 + 2 * MINUTE);
    expect(refused.result).toMatchObject({ clientLimit: { kind: "weekly_usd" } });
    events.push(...refused.events);

    // The journal alone rebuilds the same books.
    const replayed = createPoolState(["a", "b"]);
    for (const e of events) applyEvent(replayed, e);
    expect(replayed.ledger).toEqual(p.state.ledger);
    expect(replayed.clientSpend).toEqual(p.state.clientSpend);
    expect(replayed.clientSessions).toEqual(p.state.clientSessions);
  });
});
