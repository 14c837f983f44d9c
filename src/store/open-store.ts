import { mkdirSync } from "node:fs";
import path from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import Keyv, { type KeyvStoreAdapter } from "keyv";
import type { KvStore } from "./kv-store.js";

/** StoreError says a store URI cannot be opened; the message names the URI (without credentials). */
export class StoreError extends Error {
  override name = "StoreError";
}

/**
 * openStore opens a KvStore from a Keyv URI:
 * - `sqlite://<path>` (relative to the working directory; the default,
 *   `sqlite://./data/authpool.sqlite`): the embedded store. WAL journal and
 *   `synchronous=FULL`, so a set that resolved survives a crash or power loss
 *   (`?synchronous=normal` trades power-loss safety for speed; it still
 *   survives a process crash).
 * - `memory://`: in process, for tests; nothing survives a restart.
 * - `redis://`, `postgres://`, `mysql://`, ...: the matching `@keyv/*`
 *   adapter, when it is installed.
 */
export async function openStore(uri: string): Promise<KvStore> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new StoreError(`store "${uri}": expected a URI such as sqlite://./data/authpool.sqlite or memory://`);
  }
  if (scheme === "memory") {
    const keyv = new Keyv({ namespace: NAMESPACE, throwOnErrors: true });
    return wrap(() => keyv, "memory", async () => {});
  }
  if (scheme === "sqlite") return openSqlite(uri);
  return openAdapter(scheme, uri);
}

// Alphanumeric only: @keyv/sqlite clears by LIKE, where _ and % are wildcards.
const NAMESPACE = "authpool";

async function openSqlite(uri: string): Promise<KvStore> {
  const [location = "", query = ""] = uri.replace(/^sqlite:\/\//i, "").split("?", 2);
  const params = new URLSearchParams(query);
  const synchronous = (params.get("synchronous") ?? "full").toUpperCase();
  if (!["FULL", "NORMAL", "EXTRA"].includes(synchronous)) {
    throw new StoreError(`store "${uri}": synchronous: expected full, normal or extra`);
  }
  if (location === "") throw new StoreError(`store "${uri}": expected a file path after sqlite://`);
  const file = location === ":memory:" ? location : path.resolve(location);
  if (file !== ":memory:") {
    try {
      mkdirSync(path.dirname(file), { recursive: true });
    } catch (e) {
      throw new StoreError(`store "${uri}": cannot create ${path.dirname(file)}: ${(e as Error).message}`);
    }
  }
  const connect = async (): Promise<{ keyv: Keyv; adapter: KeyvSqlite }> => {
    const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 5000 });
    try {
      await adapter.query("PRAGMA journal_mode=WAL");
      await adapter.query(`PRAGMA synchronous=${synchronous}`);
    } catch (e) {
      await adapter.disconnect().catch(() => undefined);
      throw new StoreError(`store "${uri}": cannot open ${file}: ${(e as Error).message}`);
    }
    return { adapter, keyv: new Keyv({ store: adapter, namespace: NAMESPACE, throwOnErrors: true }) };
  };
  let current = await connect();
  if (file === ":memory:") return wrap(() => current.keyv, `sqlite ${file}`, () => current.adapter.disconnect());
  // A connection keeps the mode it was opened with: one opened on a
  // read-only file (or before a disk was remounted) refuses writes for good,
  // even once the file is writable again. After any failure the next
  // operation opens a fresh connection first, so the store comes back by
  // itself when the file does.
  let stale = false;
  let reconnecting: Promise<void> | undefined;
  const connection = async (): Promise<Keyv> => {
    if (stale) {
      reconnecting ??= (async () => {
        const next = await connect();
        const old = current;
        current = next;
        stale = false;
        // node-sqlite3 closes once the old connection's pending queries are done.
        await old.adapter.disconnect().catch(() => undefined);
      })().finally(() => {
        reconnecting = undefined;
      });
      await reconnecting;
    }
    return current.keyv;
  };
  return wrap(connection, `sqlite ${file}`, async () => {
    await reconnecting?.catch(() => undefined);
    await current.adapter.disconnect();
  }, () => {
    stale = true;
  });
}

const adapters: Record<string, string> = {
  redis: "@keyv/redis",
  rediss: "@keyv/redis",
  postgres: "@keyv/postgres",
  postgresql: "@keyv/postgres",
  mysql: "@keyv/mysql",
  mongodb: "@keyv/mongo",
  etcd: "@keyv/etcd",
};

async function openAdapter(scheme: string, uri: string): Promise<KvStore> {
  const name = adapters[scheme];
  const safe = redact(uri);
  if (name === undefined) {
    throw new StoreError(`store "${safe}": unsupported scheme "${scheme}:"; expected sqlite://, memory://, or one of ${Object.keys(adapters).join(", ")}`);
  }
  let mod: { default: new (uri: string) => KeyvStoreAdapter };
  try {
    mod = (await import(name)) as typeof mod;
  } catch {
    throw new StoreError(`store "${safe}": install ${name} to use a ${scheme} store`);
  }
  const adapter = new mod.default(uri);
  const keyv = new Keyv({ store: adapter, namespace: NAMESPACE, throwOnErrors: true });
  return wrap(() => keyv, `${scheme} ${safe}`, async () => {
    await keyv.disconnect();
  });
}

/** redact drops the password from a URI so it can be logged. */
export function redact(uri: string): string {
  return uri.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

/**
 * wrap adapts Keyv to KvStore. `connection` gives the Keyv to use for each
 * operation; `failed` is told of every failure (the SQLite store reconnects
 * after one).
 */
function wrap(
  connection: () => Keyv | Promise<Keyv>,
  description: string,
  close: () => Promise<void>,
  failed: () => void = () => {},
): KvStore {
  const run = async <T>(op: (keyv: Keyv) => Promise<T>): Promise<T> => {
    try {
      return await op(await connection());
    } catch (error) {
      failed();
      throw error;
    }
  };
  return {
    description,
    get: (key) => run(async (keyv) => {
      const v: unknown = await keyv.get(key);
      return typeof v === "string" ? v : undefined;
    }),
    set: (key, value) => run(async (keyv) => {
      // A false from Keyv is a write that did not happen, even without a throw.
      if ((await keyv.set(key, value)) === false) throw new StoreError(`store ${description}: set ${key} failed`);
    }),
    delete: (key) => run(async (keyv) => {
      await keyv.delete(key);
    }),
    close,
  };
}
