import { Counter, Gauge, type Registry } from "prom-client";
import type { PoolEvent } from "../../domain/index.js";
import { PREFIX, finite } from "./exposition.js";

/** Allocation outcomes, pre-created at 0 so rate() works from the first scrape. */
const OUTCOMES = ["grant", "resume", "fallback", "exhausted"] as const;

/** PoolCounters are the pool-wide counters fed by events. */
export interface PoolCounters {
  /** allocations_total; "exhausted" is fed by metricsInterceptor, as a refused allocation writes no event per call. */
  allocations: Counter<"outcome">;
  /** count adds one durable event to the counters. */
  count(e: PoolEvent): void;
}

interface Counters {
  allocations: Counter<"outcome">;
  usageUsd: Counter<"subscription">;
  usageTokens: Counter<"model" | "kind">;
  limits: Counter<"subscription" | "window">;
  rotations: Counter<"reason">;
  ratio: FallbackRatio;
}

/** createPoolCounters registers allocations, usage, limits and rotations, and the fallback ratio. */
export function createPoolCounters(registers: Registry[]): PoolCounters {
  const counters = registerCounters(registers);
  return { allocations: counters.allocations, count: (e) => countEvent(counters, e) };
}

function registerCounters(registers: Registry[]): Counters {
  const allocations = allocationsCounter(registers);
  const usageUsd = new Counter({
    name: `${PREFIX}usage_reported_usd_total`,
    help: "Cost reported through the pool (USD, API-price estimate).",
    labelNames: ["subscription"] as const,
    registers,
  });
  const usageTokens = new Counter({
    name: `${PREFIX}usage_tokens_total`,
    help: "Tokens reported through the pool, by model and kind.",
    labelNames: ["model", "kind"] as const,
    registers,
  });
  const limits = new Counter({
    name: `${PREFIX}limits_reached_total`,
    help: "Limits reached (upstream or local safeguards), by subscription and window.",
    labelNames: ["subscription", "window"] as const,
    registers,
  });
  const rotations = new Counter({
    name: `${PREFIX}rotations_total`,
    help: "Sessions moved to another subscription, by reason.",
    labelNames: ["reason"] as const,
    registers,
  });
  return { allocations, usageUsd, usageTokens, limits, rotations, ratio: createFallbackRatio(registers) };
}

function allocationsCounter(registers: Registry[]): Counter<"outcome"> {
  const allocations = new Counter({
    name: `${PREFIX}allocations_total`,
    help: "Allocations by outcome: grant (new session), resume, fallback, exhausted (RESOURCE_EXHAUSTED).",
    labelNames: ["outcome"] as const,
    registers,
  });
  for (const outcome of OUTCOMES) allocations.inc({ outcome }, 0);
  return allocations;
}

function countEvent(c: Counters, e: PoolEvent): void {
  switch (e.type) {
    case "session_allocated":
      c.ratio.granted();
      c.allocations.inc({ outcome: "grant" });
      break;
    case "session_resumed":
      c.allocations.inc({ outcome: "resume" });
      break;
    case "fallback_used":
      c.ratio.fellBack();
      c.allocations.inc({ outcome: "fallback" });
      break;
    case "session_rotated":
      c.rotations.inc({ reason: e.reason });
      break;
    case "limit_reached":
      c.limits.inc({ subscription: e.subscriptionId, window: e.window });
      break;
    case "usage_recorded":
      countUsage(c, e);
      break;
    default:
      break;
  }
}

function countUsage(c: Counters, e: Extract<PoolEvent, { type: "usage_recorded" }>): void {
  c.usageUsd.inc({ subscription: e.subscriptionId }, finite(e.costUsd));
  const models = Object.entries(e.models);
  // A report without a per-model breakdown still counts its tokens.
  for (const [model, t] of models.length > 0 ? models : [["unknown", e.tokens] as const]) {
    c.usageTokens.inc({ model, kind: "input" }, finite(t.inputTokens));
    c.usageTokens.inc({ model, kind: "output" }, finite(t.outputTokens));
    c.usageTokens.inc({ model, kind: "cache_creation" }, finite(t.cacheCreationInputTokens));
    c.usageTokens.inc({ model, kind: "cache_read" }, finite(t.cacheReadInputTokens));
  }
}

/** FallbackRatio is told of each grant and fallback; fallback_ratio divides them at scrape. */
interface FallbackRatio {
  granted(): void;
  fellBack(): void;
}

function createFallbackRatio(registers: Registry[]): FallbackRatio {
  let grants = 0;
  let fallbacks = 0;
  new Gauge({
    name: `${PREFIX}fallback_ratio`,
    help: "Share of allocations answered with the fallback provider since start: fallback / (grant + fallback), 0 when none.",
    registers,
    collect() {
      this.set(grants + fallbacks === 0 ? 0 : fallbacks / (grants + fallbacks));
    },
  });
  return {
    granted: () => {
      grants++;
    },
    fellBack: () => {
      fallbacks++;
    },
  };
}
