import { describe, it, expect } from "vitest";
import {
  MAX_MESSAGE_LENGTH,
  classifyLimitText,
  clipMessage,
  isCliNotice,
  isTransientThrottle,
  parseLimitText,
} from "../../src/domain/limit-text.js";

const NOW = Date.parse("2026-11-23T13:00:00Z");
const OPTIONS = { now: NOW, defaultTimeZone: "Europe/Berlin" };

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe("parseLimitText: usage limits", () => {
  it.each([
    {
      name: "1.0.31-1.0.84 epoch seconds",
      text: "Claude AI usage limit reached|1750708800",
      window: "five_hour",
      resetsAt: "2025-06-23T20:00:00.000Z",
      estimated: false,
    },
    {
      name: "1.0.89-1.0.119 no zone",
      text: "5-hour limit reached ∙ resets 5am",
      window: "five_hour",
      resetsAt: "2026-11-24T04:00:00.000Z",
      estimated: true,
    },
    {
      name: "2.1.29-2.1.117 no window word",
      text: "You've hit your limit · resets 4:50am (Europe/Rome)",
      window: "unknown",
      resetsAt: "2026-11-24T03:50:00.000Z",
      estimated: false,
    },
    {
      name: "2.1.2xx session limit",
      text: "You've hit your session limit · resets 12:50am (America/Los_Angeles)",
      window: "five_hour",
      resetsAt: "2026-11-24T08:50:00.000Z",
      estimated: false,
    },
    {
      name: "2.1.330 5-hour",
      text: "You've hit your 5-hour limit · resets 6pm (UTC)",
      window: "five_hour",
      resetsAt: "2026-11-23T18:00:00.000Z",
      estimated: false,
    },
    {
      name: "2.1.330 weekly with date",
      text: "You've hit your weekly limit · resets Nov 28, 4am (America/New_York)",
      window: "seven_day",
      resetsAt: "2026-11-28T09:00:00.000Z",
      estimated: false,
    },
    {
      name: "2.1.330 Opus",
      text: "You've hit your Opus limit · resets Nov 28, 4am (America/New_York)",
      window: "seven_day_opus",
      modelScope: "opus",
      resetsAt: "2026-11-28T09:00:00.000Z",
      estimated: false,
    },
    {
      name: "2.1.330 weekly Sonnet",
      text: "You've hit your weekly Sonnet limit · resets 3pm (Europe/Berlin)",
      window: "seven_day_sonnet",
      modelScope: "sonnet",
      resetsAt: "2026-11-23T14:00:00.000Z",
      estimated: false,
    },
    {
      name: "2.1.330 usage limit without reset",
      text: "You've hit your usage limit",
      window: "unknown",
      resetsAt: undefined,
      estimated: true,
    },
    {
      name: "2.1.330 out of usage credits",
      text: "You're out of usage credits · resets Dec 1, 12am (UTC)",
      window: "overage",
      resetsAt: "2026-12-01T00:00:00.000Z",
      estimated: false,
    },
    {
      name: "curly apostrophe, bullet separator",
      text: "You’ve hit your limit • resets 3pm (Europe/Berlin)",
      window: "unknown",
      resetsAt: "2026-11-23T14:00:00.000Z",
      estimated: false,
    },
    {
      name: "upper case, dash separator",
      text: "YOU'VE HIT YOUR SESSION LIMIT - RESETS 6PM (UTC)",
      window: "five_hour",
      resetsAt: "2026-11-23T18:00:00.000Z",
      estimated: false,
    },
    {
      name: "pipe separator, 'have'",
      text: "You have hit your weekly limit | resets Nov 28, 4am (America/New_York)",
      window: "seven_day",
      resetsAt: "2026-11-28T09:00:00.000Z",
      estimated: false,
    },
    {
      name: "API Error prefix and surrounding whitespace",
      text: "  API Error: You've hit your 5-hour limit · resets 5am\n",
      window: "five_hour",
      resetsAt: "2026-11-24T04:00:00.000Z",
      estimated: true,
    },
  ])("$name", ({ text, window, modelScope, resetsAt, estimated }) => {
    const signal = parseLimitText(text, OPTIONS);
    expect(signal).toBeDefined();
    expect(signal?.window).toBe(window);
    expect(signal?.modelScope).toBe(modelScope);
    expect(iso(signal?.resetsAt)).toBe(resetsAt);
    expect(signal?.estimated).toBe(estimated);
    expect(signal?.message).toBe(text.trim());
  });
});

describe("parseLimitText: not usage limits", () => {
  it.each([
    {
      name: "server throttle",
      text: "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
      kind: "server_throttle",
    },
    {
      name: "529 overloaded",
      text: 'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
      kind: "overloaded",
    },
    {
      name: "2.1.328 529 overloaded",
      text: "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment. If it persists, check https://status.claude.com.",
      kind: "overloaded",
    },
    {
      name: "request-scoped 429",
      text: "API Error: 429 Number of request tokens has exceeded your per-minute rate limit",
      kind: "server_throttle",
    },
    {
      name: "2.1.328 throttle, subscription",
      text: "API Error: Server is temporarily limiting requests (not your usage limit) · Number of request tokens has exceeded your per-minute rate limit",
      kind: "server_throttle",
    },
    {
      name: "2.1.328 throttle, API key",
      text: "API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit",
      kind: "server_throttle",
    },
    {
      name: "2.1.328 API key's rate limit (request-scoped, not a window)",
      text: "API Error: Request rejected (429) · This request would exceed your account's rate limit. Please try again later.",
      kind: "server_throttle",
    },
    { name: "extra usage billing", text: "You're out of extra usage · resets Dec 1 (UTC)", kind: "billing" },
    {
      name: "extra usage disabled",
      text: "API Error: 400 Extra usage is not enabled for this organization",
      kind: "billing",
    },
    { name: "ordinary answer", text: "The limit of f(x) as x approaches 0 is 1.", kind: "none" },
    { name: "empty", text: "", kind: "none" },
  ])("$name", ({ text, kind }) => {
    expect(parseLimitText(text, OPTIONS)).toBeUndefined();
    expect(classifyLimitText(text)).toBe(kind);
    expect(isTransientThrottle(text)).toBe(kind === "server_throttle" || kind === "overloaded");
  });

  it("classifies real limits as usage_limit", () => {
    expect(classifyLimitText("You've hit your limit · resets 3pm (Europe/Berlin)")).toBe("usage_limit");
    expect(isTransientThrottle("You've hit your limit · resets 3pm (Europe/Berlin)")).toBe(false);
  });
});

describe("isCliNotice: what plain text output is read for", () => {
  it.each([
    "You've hit your 5-hour limit · resets 2:30pm (Europe/Berlin)\n",
    "You've hit your weekly limit · resets Dec 5, 1pm (Europe/Berlin)",
    "You’ve hit your Opus limit · resets Dec 4, 1pm (Europe/Berlin)",
    "You're out of usage credits · resets Dec 1, 12am (UTC)",
    "API Error: Request rejected (429) · This request would exceed your account's rate limit. Please try again later.",
    "API Error: 529 Overloaded. This is a server-side issue, usually temporary",
    "Claude AI usage limit reached|1750708800",
    "5-hour limit reached ∙ resets 5am",
  ])("a notice: %s", (text) => {
    expect(isCliNotice(text)).toBe(true);
  });

  it.each([
    "4",
    "",
    "The answer: You've hit your 5-hour limit · resets 2:30pm (Europe/Berlin)",
    "You've hit your 5-hour limit · resets 2:30pm (Europe/Berlin)\nand then the model went on",
    "Rate limits are how APIs say no. API Error: 429 is one of them.",
  ])("an answer: %j", (text) => {
    expect(isCliNotice(text)).toBe(false);
  });
});

describe("clipMessage", () => {
  it("keeps short texts trimmed and whole", () => {
    expect(clipMessage("  You've hit your limit  ")).toBe("You've hit your limit");
  });

  it("caps long texts", () => {
    const long = `You've hit your limit · resets 3pm (Europe/Berlin) ${"x".repeat(1000)}`;
    const signal = parseLimitText(long, OPTIONS);
    expect(signal?.message.length).toBe(MAX_MESSAGE_LENGTH);
    expect(signal?.message.startsWith("You've hit your limit · resets 3pm")).toBe(true);
    expect(iso(signal?.resetsAt)).toBe("2026-11-23T14:00:00.000Z");
  });
});
