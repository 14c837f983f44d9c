import type { Command, ReconciledResult, Rejection } from "../commands.js";
import type { TranscriptUsage } from "../events.js";
import { type LearnedPrice, type PriceBasis, learnPrice, priceOf, priceTokens } from "../pricing.js";
import { MINUTE_MS, WEEK_MS } from "../time.js";
import { maxTokens, tokenGrowth, tokenTotal } from "../tokens.js";
import { type TranscriptRow, type TranscriptUsageRow, dedupeTranscriptRows } from "../transcript.js";
import type { LimitSignal } from "../usage.js";
import { type Emit, type PoolContext, notConfigured } from "./pool-context.js";

/**
 * reconcile counts transcript rows the pool has not seen: rows of its own
 * Claude sessions were reported and are skipped; the rest is use outside
 * the pool. A row seen before counts only what it grew by. A usage-limit
 * row cools the subscription down until its reset, once.
 */
export function reconcile(
  pool: Pick<PoolContext, "state" | "settings" | "isConfigured">,
  cmd: Extract<Command, { kind: "reconcile" }>,
  now: number,
  emit: Emit,
): ReconciledResult | Rejection {
  if (!pool.isConfigured(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
  const result: ReconciledResult = {
    kind: "reconciled",
    external: 0,
    externalCostUsd: 0,
    pool: 0,
    skipped: 0,
    limits: 0,
  };
  const horizon = now - WEEK_MS;
  const usage: TranscriptUsage[] = [];
  const limitKeys: string[] = [];
  const limits: LimitSignal[] = [];
  const rowKey = (key: string) => `${cmd.subscriptionId}|${key}`;
  const sub = pool.state.subscriptions.get(cmd.subscriptionId)!;
  const rows = dedupeTranscriptRows(cmd.rows);
  // The CLI's own figures go first: a session's cost-state row follows its
  // usage rows, and should price them in the same read.
  const learned = learnedFromCostRows(rows, now);
  const priceFor = (model: string) => learned.get(model) ?? pool.state.prices.get(model);
  for (const row of rows) {
    if (row.kind === "costs") continue;
    if (row.kind === "limit") {
      if (pool.state.transcriptRows.has(rowKey(row.key)) || limitKeys.includes(row.key)) {
        result.skipped++;
        continue;
      }
      limitKeys.push(row.key);
      const resetsAt = row.signal.resetsAt ?? row.at + pool.settings.cooldown.defaultMinutes * MINUTE_MS;
      const scope = row.signal.modelScope;
      const covered = sub.cooldowns.some((c) => c.modelScope === scope && c.until >= resetsAt);
      if (resetsAt > now && !covered)
        limits.push({ ...row.signal, resetsAt, estimated: row.signal.estimated || row.signal.resetsAt === undefined });
      continue;
    }
    if (row.at < horizon) {
      result.skipped++;
      continue;
    }
    if (row.sessionId !== undefined && pool.state.claudeSessions.has(row.sessionId)) {
      result.pool++;
      continue;
    }
    const seen = row.key === undefined ? undefined : pool.state.transcriptRows.get(rowKey(row.key));
    const tokens = seen === undefined ? row.tokens : tokenGrowth(row.tokens, seen.tokens);
    const priced = priceRow(row, priceFor(row.model));
    const costUsd = Math.max(0, priced.costUsd - (seen?.costUsd ?? 0));
    if (seen !== undefined && costUsd === 0 && tokenTotal(tokens) === 0) {
      result.skipped++;
      continue;
    }
    usage.push({
      ...(row.key !== undefined ? { key: row.key } : {}),
      ...(row.sessionId !== undefined ? { sessionId: row.sessionId } : {}),
      at: row.at,
      model: row.model,
      tokens,
      costUsd,
      total: { tokens: maxTokens(row.tokens, seen?.tokens), costUsd: Math.max(priced.costUsd, seen?.costUsd ?? 0) },
      basis: priced.basis,
    });
    result.external++;
    result.externalCostUsd += costUsd;
  }
  const prices = [...learned].filter(([model, p]) => !samePrice(p, pool.state.prices.get(model)));
  if (usage.length > 0 || limitKeys.length > 0 || prices.length > 0) {
    emit({
      type: "transcript_read",
      subscriptionId: cmd.subscriptionId,
      usage,
      limitKeys,
      ...(prices.length > 0 ? { prices: prices.map(([model, p]) => ({ model, scale: p.scale, at: p.at })) } : {}),
    });
  }
  result.learnedPrices = prices.length;
  for (const limit of limits) {
    emit({
      type: "limit_reached",
      subscriptionId: cmd.subscriptionId,
      kind: "upstream",
      window: limit.window,
      resetsAt: limit.resetsAt,
      estimated: limit.estimated,
      message: `transcript: ${limit.message}`,
      ...(limit.modelScope !== undefined ? { modelScope: limit.modelScope } : {}),
    });
    result.limits++;
  }
  return result;
}

/** priceRow: the line's own figure, else what the CLI taught for the model, else the parser's table price. */
function priceRow(row: TranscriptUsageRow, learned: LearnedPrice | undefined): { costUsd: number; basis: PriceBasis } {
  if (row.costSource === "line") return { costUsd: row.costUsd, basis: "line" };
  if (learned !== undefined) return priceTokens(row.model, row.tokens, learned);
  return { costUsd: row.costUsd, basis: priceOf(row.model).known ? "list" : "estimate" };
}

/** learnedFromCostRows: the prices cost-state rows teach, the latest figure per model. */
function learnedFromCostRows(rows: readonly TranscriptRow[], now: number): Map<string, LearnedPrice> {
  const learned = new Map<string, LearnedPrice>();
  for (const row of rows) {
    if (row.kind !== "costs") continue;
    for (const [model, usage] of Object.entries(row.models)) {
      const price = learnPrice(model, usage, row.at ?? now);
      const known = learned.get(model);
      if (price !== undefined && (known === undefined || price.at >= known.at)) learned.set(model, price);
    }
  }
  return learned;
}

/** samePrice: re-reading a figure already learned is no news (and no journal record). */
function samePrice(a: LearnedPrice, b: LearnedPrice | undefined): boolean {
  return b !== undefined && (b.at > a.at || (b.at === a.at && b.scale === a.scale));
}
