import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeFakeLogin } from "../fake-login.js";
import { type StoreKind, type StoreTarget, createStoreTarget } from "./store-target.js";

/** PoolConfigOptions shape the pool of a torture run. */
export interface PoolConfigOptions {
  subscriptions: number;
  maxSessions: number;
  snapshotEveryRecords: number;
  storeUri?: string;
  cluster?: { leaseTtlSeconds: number; followPollMs: number };
}

/**
 * poolConfig is the pool a torture run uses: big budgets (capacity is
 * what binds), no expiry, frequent snapshots; a SQLite file in `dir` unless
 * `storeUri` says otherwise, and `cluster` as given.
 */
export function poolConfig(dir: string, o: PoolConfigOptions) {
  return {
    subscriptions: Array.from({ length: o.subscriptions }, (_, i) => ({
      id: `sub${i + 1}`,
      email: `sub${i + 1}@example.com`,
      type: "claude-max",
      configDir: path.join(dir, `sub${i + 1}`),
      weeklyBudgetUsd: 1_000_000,
      fiveHourBudgetUsd: 100_000,
      maxSessions: o.maxSessions,
    })),
    // A week: no session may expire during the run, so every acknowledged one must still be held.
    sessions: { activeMinutes: 5, staleMinutes: 7 * 24 * 60 },
    snapshot: { everyRecords: o.snapshotEveryRecords, everySeconds: 3600 },
    server: { host: "127.0.0.1", port: 0 },
    store: { uri: o.storeUri ?? `sqlite://${path.join(dir, "authpool.sqlite")}` },
    ...(o.cluster !== undefined ? { cluster: o.cluster } : {}),
    // Fake logins: polling them would ask api.anthropic.com.
    upstream: { enabled: false },
  };
}

/** PoolFiles is a run's temp dir, its store and the config file that names both. */
export interface PoolFiles {
  dir: string;
  target: StoreTarget;
  configFile: string;
}

/** writePoolFiles makes a temp dir (`prefix`…) with a logged-in pool's config file, on a fresh store of `store`. */
export async function writePoolFiles(
  prefix: string,
  store: StoreKind,
  o: Omit<PoolConfigOptions, "storeUri">,
): Promise<PoolFiles> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const target = await createStoreTarget(store, dir);
  const configFile = path.join(dir, "pool.json");
  const config = poolConfig(dir, { ...o, storeUri: target.uri });
  // Logged in (fake tokens): the pool offers only subscriptions with a usable login.
  for (const s of config.subscriptions) await writeFakeLogin(s.configDir);
  await writeFile(configFile, JSON.stringify(config, null, 2));
  return { dir, target, configFile };
}
