import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import sqlite3 from "sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, redact, StoreError } from "../../src/store/index.js";
import type { PoolStore } from "../../src/store/index.js";
import { freshPostgresUri, withClient } from "../support/postgres.js";
import { TempDirs } from "./store-helpers.js";

const temp = new TempDirs();
const open: PoolStore[] = [];
const drops: (() => Promise<void>)[] = [];

async function track(store: Promise<PoolStore>): Promise<PoolStore> {
  const s = await store;
  open.push(s);
  return s;
}

async function closeStore(store: PoolStore): Promise<void> {
  open.splice(open.indexOf(store), 1);
  await store.close();
}

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
  for (const drop of drops.splice(0)) await drop();
  await temp.cleanup();
});

/** postgresUri gives a store URI on a fresh schema, dropped after the test. */
async function postgresUri(): Promise<{ uri: string; schema: string }> {
  const fresh = await freshPostgresUri();
  drops.push(fresh.drop);
  return fresh;
}

interface Backend {
  name: string;
  /** uri names a new store; opening it again gives the same store (when the backend is durable). */
  uri: () => Promise<string>;
  durable: boolean;
}

const backends: Backend[] = [
  { name: "memory", uri: async () => "memory://", durable: false },
  { name: "sqlite", uri: async () => `sqlite://${path.join(await temp.make(), "pool.sqlite")}`, durable: true },
  { name: "postgres", uri: async () => (await postgresUri()).uri, durable: true },
];

describe.each(backends)("KvStore contract ($name)", ({ uri: newUri, durable }) => {
  async function fresh(): Promise<{ store: PoolStore; uri: string }> {
    const uri = await newUri();
    return { store: await track(openStore(uri)), uri };
  }

  it("answers undefined for a missing key", async () => {
    const { store } = await fresh();
    expect(await store.get("journal:000000000001")).toBeUndefined();
    expect(await store.get("")).toBeUndefined();
  });

  it("round-trips a 1 MB string", async () => {
    const { store } = await fresh();
    const big = Array.from({ length: 1024 * 1024 }, (_, i) => String.fromCharCode(32 + (i % 90))).join("");
    expect(big.length).toBe(1024 * 1024);
    await store.set("big", big);
    const back = await store.get("big");
    expect(back?.length).toBe(big.length);
    expect(back === big).toBe(true);
  });

  it("round-trips unicode and awkward strings exactly", async () => {
    const { store } = await fresh();
    const values = {
      unicode: "héllo wörld — 日本語テキスト 🎉👩‍👩‍👧 \u0301e\u200b",
      controls: 'nul\u0000tab\tnewline\nquote"backslash\\',
      colon: ":base64:aGVsbG8=",
      leadingColon: "::x",
      empty: "",
      json: JSON.stringify({ n: 1, events: [{ seq: 1 }] }),
      numeric: "42",
    };
    for (const [k, v] of Object.entries(values)) await store.set(`k:${k}`, v);
    for (const [k, v] of Object.entries(values)) expect(await store.get(`k:${k}`), k).toBe(v);
    // Unicode in the key too.
    await store.set("clé:日本", "v");
    expect(await store.get("clé:日本")).toBe("v");
  });

  it("overwrites a value", async () => {
    const { store } = await fresh();
    await store.set("k", "one");
    await store.set("k", "two");
    expect(await store.get("k")).toBe("two");
  });

  it("deletes a value, and deleting a missing key is fine", async () => {
    const { store } = await fresh();
    await store.set("k", "v");
    await store.set("other", "kept");
    await store.delete("k");
    expect(await store.get("k")).toBeUndefined();
    expect(await store.get("other")).toBe("kept");
    await expect(store.delete("k")).resolves.toBeUndefined();
    await expect(store.delete("never-written")).resolves.toBeUndefined();
    await store.set("k", "again");
    expect(await store.get("k")).toBe("again");
  });

  it(durable ? "keeps values across close and reopen" : "keeps nothing across close and reopen", async () => {
    const { store, uri } = await fresh();
    await store.set("k", "v");
    await store.set("gone", "x");
    await store.delete("gone");
    await closeStore(store);
    const again = await track(openStore(uri));
    expect(await again.get("k")).toBe(durable ? "v" : undefined);
    expect(await again.get("gone")).toBeUndefined();
  });

  it("has a description without credentials", async () => {
    const { store } = await fresh();
    expect(store.description).not.toBe("");
  });
});

describe("openStore", () => {
  it("refuses a string with no scheme", async () => {
    const err = await openStore("nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toContain('"nope"');
    expect((err as Error).message).toMatch(/expected a URI/);
  });

  it("refuses an unsupported scheme, names it and says why", async () => {
    const err = await openStore("ftp://x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toContain('unsupported scheme "ftp:"');
    for (const scheme of ["sqlite://", "postgres://", "memory://"]) expect((err as Error).message).toContain(scheme);
    expect((err as Error).message).toMatch(/conditional write/);
  });

  it("refuses sqlite:// without a path and a bad synchronous setting", async () => {
    await expect(openStore("sqlite://")).rejects.toThrow(StoreError);
    await expect(openStore("sqlite://")).rejects.toThrow(/file path/);
    const dir = await temp.make();
    const err = await openStore(`sqlite://${path.join(dir, "x.sqlite")}?synchronous=off`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(/synchronous/);
  });

  it("refuses other Keyv backends, naming the URI without its password", async () => {
    // Keyv has a Redis adapter, but no conditional write to fence the journal with.
    const err = await openStore("redis://user:s3cret@host:6379").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).not.toContain("s3cret");
    expect((err as Error).message).toContain("redis://user:***@host:6379");
    expect((err as Error).message).toContain('unsupported scheme "redis:"');
  });

  it("creates the directories of a nested sqlite path", async () => {
    const dir = await temp.make();
    const file = path.join(dir, "a", "b", "c", "pool.sqlite");
    const store = await track(openStore(`sqlite://${file}`));
    await store.set("k", "v");
    expect(existsSync(file)).toBe(true);
    expect(await store.get("k")).toBe("v");
    expect(store.description).toContain(file);
  });

  it("refuses a sqlite path it cannot create or open", async () => {
    const dir = await temp.make();
    const blocker = path.join(dir, "file");
    await writeFile(blocker, "not a directory");
    const notADir = await openStore(`sqlite://${path.join(blocker, "sub", "pool.sqlite")}`).catch((e: unknown) => e);
    expect(notADir).toBeInstanceOf(StoreError);
    expect((notADir as Error).message).toMatch(/cannot create/);
    // A directory is not a database file.
    const isDir = await openStore(`sqlite://${dir}`).catch((e: unknown) => e);
    expect(isDir).toBeInstanceOf(StoreError);
    expect((isDir as Error).message).toMatch(/cannot open/);
  });

  it("opens sqlite with synchronous=normal", async () => {
    const dir = await temp.make();
    const store = await track(openStore(`sqlite://${path.join(dir, "n.sqlite")}?synchronous=normal`));
    await store.set("k", "v");
    expect(await store.get("k")).toBe("v");
  });

  it("puts sqlite in WAL mode", async () => {
    const dir = await temp.make();
    const file = path.join(dir, "wal.sqlite");
    const store = await track(openStore(`sqlite://${file}`));
    await store.set("k", "v");
    expect(existsSync(`${file}-wal`)).toBe(true);
    // journal_mode=WAL is persistent: a second connection sees it.
    const mode = await new Promise<unknown>((resolve, reject) => {
      const db = new sqlite3.Database(file, (openErr) => {
        if (openErr) return reject(openErr);
        db.get("PRAGMA journal_mode", (err, row) => {
          db.close(() => (err ? reject(err) : resolve(row)));
        });
      });
    });
    expect(mode).toEqual({ journal_mode: "wal" });
  });
});

describe("openStore (postgres)", () => {
  it("keeps its tables in the schema the URI names, and the password out of its description", async () => {
    const { uri, schema } = await postgresUri();
    // Trust auth ignores the password, so the store opens with one in its URI.
    const store = await track(openStore(uri.replace("postgres://postgres@", "postgresql://postgres:s3cret@")));
    await store.set("k", "v");
    expect(store.description).not.toContain("s3cret");
    expect(store.log.description).not.toContain("s3cret");
    expect(store.description).toContain(`schema ${schema}`);
    const tables = await withClient((c) =>
      c.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
        [schema],
      ),
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual(["journal", "kv", "lease", "snapshot"]);
    const kv = await withClient((c) => c.query<{ key: string }>(`SELECT key FROM ${schema}.kv`));
    expect(kv.rows.map((r) => r.key)).toEqual(["authpool:k"]);
  });

  it("keeps a store working when another one is closed", async () => {
    // @keyv/postgres 2.2.3 ends its one module-global pool on any store's disconnect.
    const [first, second] = [await postgresUri(), await postgresUri()];
    const a = await track(openStore(first.uri));
    const b = await track(openStore(second.uri));
    const c = await track(openStore(second.uri));
    await closeStore(a);
    await closeStore(c);
    await b.set("k", "v");
    expect(await b.get("k")).toBe("v");
    await b.log.append(0, 1, 1, "{}");
    expect(await b.log.readPage(0, 10)).toEqual({ records: [{ n: 1, data: "{}" }], first: 1, last: 1 });
  });

  it("refuses a schema that is not a plain identifier", async () => {
    for (const schema of ["1abc", "a-b", "a;drop", "", "x".repeat(49)]) {
      const err = await openStore(`postgres://u:s3cret@127.0.0.1:5432/test?schema=${encodeURIComponent(schema)}`).catch(
        (e: unknown) => e,
      );
      expect(err, schema).toBeInstanceOf(StoreError);
      expect((err as Error).message, schema).toMatch(/schema/);
      expect((err as Error).message, schema).not.toContain("s3cret");
    }
  });

  it("says it cannot connect, without the password", async () => {
    // Port 1: nothing listens there.
    const err = await openStore("postgres://u:s3cret@127.0.0.1:1/test").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toContain("postgres://u:***@127.0.0.1:1/test");
    expect((err as Error).message).toMatch(/cannot open/);
    expect((err as Error).message).not.toContain("s3cret");
  });
});

describe("redact", () => {
  it("hides the password and keeps the rest", () => {
    expect(redact("redis://user:pw@host:6379")).toBe("redis://user:***@host:6379");
    expect(redact("redis://user:pw@host:6379")).not.toContain("pw@");
    expect(redact("redis://:pw@host")).toBe("redis://:***@host");
    expect(redact("postgres://u:p%40ss@db/pool")).toBe("postgres://u:***@db/pool");
    expect(redact("postgres://u@db/pool?sslmode=require&password=pw&schema=s")).toBe(
      "postgres://u@db/pool?sslmode=require&password=***&schema=s",
    );
    expect(redact("postgres://u@db/pool?PASSWORD=pw")).toBe("postgres://u@db/pool?PASSWORD=***");
  });

  it("leaves a URI without a password alone", () => {
    expect(redact("redis://host:6379")).toBe("redis://host:6379");
    expect(redact("redis://user@host:6379")).toBe("redis://user@host:6379");
    expect(redact("sqlite://./data/authpool.sqlite")).toBe("sqlite://./data/authpool.sqlite");
  });
});
