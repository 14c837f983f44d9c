import { DAY_MS, HISTORY_RETENTION_MS, type LedgerEntry } from "../domain/index.js";
import type { KvStore } from "./kv-store.js";

/**
 * UsageArchive keeps the ledger's hours after they leave the pool's state
 * (which holds 8 days, as the budgets need): one value per UTC day under
 * `history/day/<YYYY-MM-DD>`, a list of the days kept, and the last hour
 * archived. Only the leader writes it (a background job), so a day's
 * read-modify-write has no rival; any instance reads it.
 *
 * A day is a compact array of rows, not the snapshot codec: it is read a
 * day at a time and by hand when something looks wrong.
 *
 * A day that ends at or before the cursor is complete: archiving only ever
 * writes from the cursor on, so its value never changes again. Each
 * instance keeps the complete days it has read, so the dashboard's
 * GetUsageHistory every few minutes reads the list, the cursor and the day
 * still being archived, not 40 days of values. That holds while the store
 * is not swapped under a running instance (a restore from backup means a
 * restart, as it does for the pool's state).
 */

const DAYS_KEY = "history/days";
const CURSOR_KEY = "history/cursor";
const dayKey = (day: string) => `history/day/${day}`;

/** Row is one ledger entry as stored: hour, client, subscription, model, cost, 4 token counts, runs, limits, fallbacks. */
type Row = [number, string, string, string, number, number, number, number, number, number, number, number];

/**
 * MAX_CACHED_DAYS bounds the complete days an instance keeps: what one
 * GetUsageHistory can ask for (40 days, which may touch 41 UTC days).
 * Pruning keeps the list near that; the bound holds even when the leader
 * has not pruned for a while.
 */
const MAX_CACHED_DAYS = Math.ceil(HISTORY_RETENTION_MS / DAY_MS) + 1;

export class UsageArchive {
  private readonly kv: KvStore;
  /** Complete days as read, oldest use first (a Map iterates in insertion order). */
  private readonly complete = new Map<string, Row[]>();

  constructor(kv: KvStore) {
    this.kv = kv;
  }

  /** archivedUntil is the end (exclusive) of the hours archived so far; undefined: none yet. */
  async archivedUntil(): Promise<number | undefined> {
    const value = await this.kv.get(CURSOR_KEY);
    return value === undefined ? undefined : Number(value);
  }

  /**
   * archive stores the entries of the hours [from, to) (replacing what an
   * earlier run stored for those hours) and moves the cursor to `to`.
   * Resolves once durable; the cursor moves last, so a crash in between
   * archives the same hours again, never loses them.
   */
  async archive(entries: readonly LedgerEntry[], from: number, to: number): Promise<void> {
    const byDay = new Map<string, Row[]>();
    for (let day = Math.floor(from / DAY_MS) * DAY_MS; day < to; day += DAY_MS) byDay.set(dayName(day), []);
    for (const e of entries) byDay.get(dayName(e.hour))?.push(toRow(e));
    const days = new Set(await this.days());
    for (const [day, rows] of byDay) {
      const kept = (await this.readDay(day)).filter((r) => r[0] < from || r[0] >= to);
      if (kept.length + rows.length === 0 && !days.has(day)) continue;
      await this.kv.set(dayKey(day), JSON.stringify([...kept, ...rows]));
      // Only the day at the cursor and later ones are written, never a complete one; forget it all the same.
      this.complete.delete(day);
      days.add(day);
    }
    await this.kv.set(DAYS_KEY, JSON.stringify([...days].sort()));
    await this.kv.set(CURSOR_KEY, String(to));
  }

  /**
   * read returns the archived entries whose hour lies in [from, to),
   * reading from the store only the days this instance has not yet seen
   * complete.
   */
  async read(from: number, to: number): Promise<LedgerEntry[]> {
    // The cursor before any day: it moves only once the days before it are
    // durable, so a day read after it is final. Read the other way round, a
    // day read just before the leader finished it would be kept incomplete.
    const cursor = await this.archivedUntil();
    const entries: LedgerEntry[] = [];
    // Only listed days: a kept day the leader has pruned since is no longer one.
    for (const day of await this.days()) {
      const start = Date.parse(`${day}T00:00:00Z`);
      if (start + DAY_MS <= from || start >= to) continue;
      const done = cursor !== undefined && start + DAY_MS <= cursor;
      for (const r of await (done ? this.completeDay(day) : this.readDay(day)))
        if (r[0] >= from && r[0] < to) entries.push(fromRow(r));
    }
    return entries;
  }

  /** prune drops the days that end before `before`. */
  async prune(before: number): Promise<void> {
    const days = await this.days();
    const keep = days.filter((day) => Date.parse(`${day}T00:00:00Z`) + DAY_MS > before);
    if (keep.length === days.length) return;
    // The list first: a crash after it leaves orphaned days, never a listed day without its value.
    await this.kv.set(DAYS_KEY, JSON.stringify(keep));
    for (const day of days) if (!keep.includes(day)) await this.kv.delete(dayKey(day));
  }

  /** completeDay is a complete day's rows: kept from an earlier read, or read now and kept. */
  private async completeDay(day: string): Promise<Row[]> {
    const kept = this.complete.get(day);
    // Delete and set again: the day becomes the most recently used.
    this.complete.delete(day);
    const rows = kept ?? (await this.readDay(day));
    this.complete.set(day, rows);
    for (const oldest of this.complete.keys()) {
      if (this.complete.size <= MAX_CACHED_DAYS) break;
      this.complete.delete(oldest);
    }
    return rows;
  }

  private async days(): Promise<string[]> {
    const value = await this.kv.get(DAYS_KEY);
    return value === undefined ? [] : (JSON.parse(value) as string[]);
  }

  private async readDay(day: string): Promise<Row[]> {
    const value = await this.kv.get(dayKey(day));
    return value === undefined ? [] : (JSON.parse(value) as Row[]);
  }
}

function dayName(at: number): string {
  return new Date(Math.floor(at / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

function toRow(e: LedgerEntry): Row {
  const t = e.tokens;
  return [
    e.hour,
    e.client,
    e.subscriptionId,
    e.model,
    e.costUsd,
    t.inputTokens,
    t.outputTokens,
    t.cacheCreationInputTokens,
    t.cacheReadInputTokens,
    e.requests,
    e.limits ?? 0,
    e.fallbacks ?? 0,
  ];
}

function fromRow(r: Row): LedgerEntry {
  const [hour, client, subscriptionId, model, costUsd, input, output, cacheCreation, cacheRead, requests] = r;
  const entry: LedgerEntry = {
    hour,
    client,
    subscriptionId,
    model,
    costUsd,
    tokens: {
      inputTokens: input,
      outputTokens: output,
      cacheCreationInputTokens: cacheCreation,
      cacheReadInputTokens: cacheRead,
    },
    requests,
  };
  if (r[10] > 0) entry.limits = r[10];
  if (r[11] > 0) entry.fallbacks = r[11];
  return entry;
}
