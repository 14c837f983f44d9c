/**
 * TranscriptReconciler follows each subscription's transcripts
 * (`<configDir>/projects/**\/*.jsonl`) and hands the rows it finds to the
 * pool, which counts use the pool never saw reported as external and acts on
 * usage-limit rows. It reads, never writes, inside a config dir; how far each
 * file was read is kept in the pool's store, and advanced only after the pool
 * has durably taken the rows, so a crash re-reads rather than loses them
 * (keyed rows are deduplicated by the pool).
 */

import type { Clock } from "../domain/index.js";
import { WEEK_MS, parseTranscriptLine } from "../domain/index.js";
import type { TranscriptRow } from "../domain/index.js";
import type { Logger } from "../runtime/logger.js";
import type { KvStore } from "../store/index.js";
import { type TranscriptCursors, readTranscripts } from "./tailer.js";

/** ReconciledSubscription is one subscription whose transcripts are followed. */
export interface ReconciledSubscription {
  id: string;
  configDir: string;
}

/** TranscriptReconcilerOptions configures a TranscriptReconciler. */
export interface TranscriptReconcilerOptions {
  subscriptions: readonly ReconciledSubscription[];
  store: KvStore;
  clock: Clock;
  logger: Logger;
  /**
   * Usage rows younger than this wait for a later pass: a run reports when
   * it ends, and until then its rows look like use from outside unless its
   * session id is already known to the pool.
   */
  graceMs: number;
  /** Zone assumed for a limit text's reset time that names none. */
  defaultTimeZone: string;
  /** Hands rows to the pool; resolves once the pool's change is durable. */
  submit: (subscriptionId: string, rows: TranscriptRow[]) => Promise<void>;
}

/** TranscriptScanStatus is what the status shows about one subscription's transcripts. */
export interface TranscriptScanStatus {
  scannedAt?: number;
  error?: string;
  files: number;
}

/** Rows per submit: keeps one journal record small even on a first pass over a busy week. */
const BATCH_ROWS = 500;

const CURSOR_KEY_PREFIX = "transcripts:cursors:";

interface Entry {
  sub: ReconciledSubscription;
  cursors?: TranscriptCursors;
  status: TranscriptScanStatus;
  running: boolean;
}

/** TranscriptReconciler reads new transcript lines of every subscription on each scan. */
export class TranscriptReconciler {
  private readonly entries: Entry[];
  private readonly options: TranscriptReconcilerOptions;

  constructor(options: TranscriptReconcilerOptions) {
    this.options = options;
    this.entries = options.subscriptions.map((sub) => ({ sub, status: { files: 0 }, running: false }));
  }

  /** scanAll reads every subscription's new lines once; never rejects (failures go to status and log). */
  async scanAll(): Promise<void> {
    await Promise.all(this.entries.map((entry) => this.scanOne(entry)));
  }

  /** status reports one subscription's scanning; undefined when its transcripts are not followed. */
  status(subscriptionId: string): TranscriptScanStatus | undefined {
    return this.entries.find((e) => e.sub.id === subscriptionId)?.status;
  }

  /** neverScanned is true until every subscription was scanned once (the first scan is due at start). */
  get neverScanned(): boolean {
    return this.entries.some((e) => e.status.scannedAt === undefined && e.status.error === undefined);
  }

  private async scanOne(entry: Entry): Promise<void> {
    if (entry.running) return;
    entry.running = true;
    const previous = entry.status.error;
    try {
      await this.read(entry);
      entry.status = { scannedAt: this.options.clock.now(), files: Object.keys(entry.cursors ?? {}).length };
    } catch (error) {
      entry.status = { ...entry.status, error: describe(error) };
    } finally {
      entry.running = false;
    }
    const error = entry.status.error;
    if (error !== undefined && error !== previous) {
      this.options.logger.warn("transcripts not read", { subscriptionId: entry.sub.id, reason: error });
    }
  }

  private async read(entry: Entry): Promise<void> {
    const { store, clock, graceMs, defaultTimeZone, submit } = this.options;
    const key = CURSOR_KEY_PREFIX + entry.sub.id;
    entry.cursors ??= parseCursors(await store.get(key));
    const cursors: TranscriptCursors = { ...entry.cursors };
    const result = await readTranscripts(entry.sub.configDir, cursors);
    const now = clock.now();
    const holdAfter = now - graceMs;
    const horizon = now - WEEK_MS;
    const rows: TranscriptRow[] = [];
    for (const chunk of result.chunks) {
      let commit = chunk.start;
      let held = false;
      for (const line of chunk.lines) {
        const row = line.text === "" ? undefined : parseTranscriptLine(line.text, { defaultTimeZone });
        if (row?.kind === "usage" && row.at > holdAfter) held = true;
        // A limit row is acted on at once, even past a held row: the pool
        // remembers its key, so reading it again later does nothing. A
        // cost-state row too: it teaches prices, and the same figure taught
        // twice is no news.
        if (row?.kind === "limit" || row?.kind === "costs") rows.push(row);
        else if (row?.kind === "usage" && !held && row.at >= horizon) rows.push(row);
        if (!held) commit = line.end;
      }
      cursors[chunk.file] = { offset: commit, ino: chunk.ino, dev: chunk.dev };
    }
    for (const file of result.vanished) delete cursors[file];
    for (let i = 0; i < rows.length; i += BATCH_ROWS) {
      await submit(entry.sub.id, rows.slice(i, i + BATCH_ROWS));
    }
    // Only now: the pool has the rows durably, so the offsets may move past them.
    if (!sameCursors(cursors, entry.cursors)) await store.set(key, JSON.stringify(cursors));
    entry.cursors = cursors;
    if (result.errors.length > 0) {
      throw new Error(result.errors.map((e) => `${e.file}: ${e.reason}`).join("; "));
    }
  }
}

function parseCursors(text: string | undefined): TranscriptCursors {
  if (text === undefined) return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) return {};
    const cursors: TranscriptCursors = {};
    for (const [file, c] of Object.entries(value as Record<string, unknown>)) {
      const { offset, ino, dev } = (c ?? {}) as Record<string, unknown>;
      if (typeof offset === "number" && typeof ino === "number" && typeof dev === "number") {
        cursors[file] = { offset, ino, dev };
      }
    }
    return cursors;
  } catch {
    // A damaged cursor record costs a re-read, which the pool deduplicates.
    return {};
  }
}

function sameCursors(a: TranscriptCursors, b: TranscriptCursors | undefined): boolean {
  if (b === undefined) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => {
    const x = a[k]!;
    const y = b[k];
    return y !== undefined && x.offset === y.offset && x.ino === y.ino && x.dev === y.dev;
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
