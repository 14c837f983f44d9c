import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import sqlite3 from "sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, redact, StoreError } from "../../src/store/index.js";
import type { KvStore } from "../../src/store/index.js";
import { TempDirs } from "./store-helpers.js";

const temp = new TempDirs();
const open: KvStore[] = [];

async function track(store: Promise<KvStore>): Promise<KvStore> {
  const s = await store;
  open.push(s);
  return s;
}

async function closeStore(store: KvStore): Promise<void> {
  open.splice(open.indexOf(store), 1);
  await store.close();
}

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
  await temp.cleanup();
});

interface Backend {
  name: string;
  /** uri for a store in dir; the same dir gives the same store (when the backend is durable). */
  uri: (dir: string) => string;
  durable: boolean;
}

const backends: Backend[] = [
  { name: "memory", uri: () => "memory://", durable: false },
  { name: "sqlite", uri: (dir) => `sqlite://${path.join(dir, "pool.sqlite")}`, durable: true },
];

describe.each(backends)("KvStore contract ($name)", ({ uri, durable }) => {
  async function fresh(): Promise<{ store: KvStore; dir: string }> {
    const dir = await temp.make();
    return { store: await track(openStore(uri(dir))), dir };
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
      controls: "nul\u0000tab\tnewline\nquote\"backslash\\",
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
    const { store, dir } = await fresh();
    await store.set("k", "v");
    await store.set("gone", "x");
    await store.delete("gone");
    await closeStore(store);
    const again = await track(openStore(uri(dir)));
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

  it("refuses an unsupported scheme and names it", async () => {
    const err = await openStore("ftp://x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toContain('unsupported scheme "ftp:"');
    expect((err as Error).message).toContain("sqlite://");
  });

  it("refuses sqlite:// without a path and a bad synchronous setting", async () => {
    await expect(openStore("sqlite://")).rejects.toThrow(StoreError);
    await expect(openStore("sqlite://")).rejects.toThrow(/file path/);
    const dir = await temp.make();
    const err = await openStore(`sqlite://${path.join(dir, "x.sqlite")}?synchronous=off`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(/synchronous/);
  });

  it("redacts the password when an adapter is not installed", async () => {
    // @keyv/redis is not a dependency: the error names the package, never the password.
    const err = await openStore("redis://user:s3cret@host:6379").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).not.toContain("s3cret");
    expect((err as Error).message).toContain("redis://user:***@host:6379");
    expect((err as Error).message).toContain("@keyv/redis");
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

describe("redact", () => {
  it("hides the password and keeps the rest", () => {
    expect(redact("redis://user:pw@host:6379")).toBe("redis://user:***@host:6379");
    expect(redact("redis://user:pw@host:6379")).not.toContain("pw@");
    expect(redact("redis://:pw@host")).toBe("redis://:***@host");
    expect(redact("postgres://u:p%40ss@db/pool")).toBe("postgres://u:***@db/pool");
  });

  it("leaves a URI without a password alone", () => {
    expect(redact("redis://host:6379")).toBe("redis://host:6379");
    expect(redact("redis://user@host:6379")).toBe("redis://user@host:6379");
    expect(redact("sqlite://./data/authpool.sqlite")).toBe("sqlite://./data/authpool.sqlite");
  });
});
