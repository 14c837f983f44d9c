import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Journal, kvJournalStore } from "../../src/store/index.js";
import type { KvStore } from "../../src/store/index.js";
import { Pool } from "../../src/domain/index.js";
import type { PoolSettings } from "../../src/domain/index.js";

/** TempDirs hands out fresh temp directories and removes them all on cleanup. */
export class TempDirs {
  private readonly dirs: string[] = [];
  async make(prefix = "authpool-store-"): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }
  async cleanup(): Promise<void> {
    for (const dir of this.dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * FlakyStore wraps a KvStore and fails on demand: the next N sets, every set,
 * or every get. It records which keys were durably written, synchronously, so
 * a test can check what was durable at any instant.
 */
export class FlakyStore implements KvStore {
  readonly inner: KvStore;
  private failNext = 0;
  failAllSets = false;
  failGets = false;
  setCalls = 0;
  getCalls = 0;
  failures = 0;
  readonly durableKeys = new Set<string>();
  private setWaiters: (() => void)[] = [];
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  constructor(inner: KvStore) {
    this.inner = inner;
  }

  get description(): string {
    return `flaky ${this.inner.description}`;
  }

  /** failNextSets makes the next n sets reject without writing anything. */
  failNextSets(n: number): void {
    this.failNext = n;
  }

  /** whenSetCalled resolves on the next call to set (before it completes). */
  whenSetCalled(): Promise<void> {
    return new Promise((resolve) => this.setWaiters.push(resolve));
  }

  /** hold makes sets wait (after deciding whether they fail) until release(). */
  hold(): void {
    this.gate ??= new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.openGate?.();
    this.gate = undefined;
    this.openGate = undefined;
  }

  async get(key: string): Promise<string | undefined> {
    this.getCalls++;
    if (this.failGets) {
      this.failures++;
      throw new Error(`injected get failure (${key})`);
    }
    return this.inner.get(key);
  }

  async set(key: string, value: string): Promise<void> {
    this.setCalls++;
    for (const wake of this.setWaiters.splice(0)) wake();
    if (this.failAllSets || this.failNext > 0) {
      if (this.failNext > 0) this.failNext--;
      this.failures++;
      throw new Error(`injected set failure (${key})`);
    }
    if (this.gate !== undefined) await this.gate;
    await this.inner.set(key, value);
    this.durableKeys.add(key);
  }

  async delete(key: string): Promise<void> {
    await this.inner.delete(key);
    this.durableKeys.delete(key);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** loader returns a PoolWriter `load` function over a store. */
export function loader(store: KvStore, settings: PoolSettings): () => Promise<{ pool: Pool; journal: Journal }> {
  const ids = settings.subscriptions.map((s) => s.id);
  return async () => {
    const { journal, state } = await Journal.open(kvJournalStore(store), ids);
    return { pool: new Pool(state, settings), journal };
  };
}
