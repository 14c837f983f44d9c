import { fileURLToPath } from "node:url";
import {
  appendFile,
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listTranscriptFiles, readTranscripts } from "../../src/transcripts/index.js";
import type { ReadTranscriptsOptions, ReadTranscriptsResult, TranscriptCursors } from "../../src/transcripts/index.js";

// The shared example trees are read-only; every test works on a copy.
const FIXTURES = fileURLToPath(new URL("../fixtures/transcripts", import.meta.url));
const MAIN = "projects/-srv-app/3f9a1c52-7d0e-4b8e-9a61-0c2d5e8f4a17.jsonl";
const SUBAGENT = "projects/-srv-app/3f9a1c52-7d0e-4b8e-9a61-0c2d5e8f4a17/subagents/agent-7c1d.jsonl";

let root: string;
let configDir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "authpool-transcripts-"));
  configDir = path.join(root, "config");
});

afterEach(async () => {
  // Undo chmod 000 so a non-root run can clean up.
  await chmod(path.join(configDir, "projects", "locked.jsonl"), 0o644).catch(() => undefined);
  await chmod(path.join(configDir, "projects", "locked"), 0o755).catch(() => undefined);
  await rm(root, { recursive: true, force: true });
});

/** copyTree copies a fixture tree and makes it writable (the shared copy is read-only and copyFile keeps modes). */
async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      await copyTree(source, target);
    } else {
      await copyFile(source, target);
      await chmod(target, 0o644);
    }
  }
}

async function installFixture(name = "config-a"): Promise<void> {
  await copyTree(path.join(FIXTURES, name), configDir);
}

function at(file: string): string {
  return path.join(configDir, ...file.split("/"));
}

/** writeTranscript writes a transcript file (relative path), creating its folders. */
async function writeTranscript(file: string, content: string | Buffer): Promise<void> {
  await mkdir(path.dirname(at(file)), { recursive: true });
  await writeFile(at(file), content);
}

/** Tail plays the caller: it keeps the cursors and advances them to the last line of each chunk. */
class Tail {
  readonly cursors: TranscriptCursors = {};
  async read(options?: ReadTranscriptsOptions): Promise<ReadTranscriptsResult> {
    const frozen = structuredClone(this.cursors);
    const result = await readTranscripts(configDir, this.cursors, options);
    expect(this.cursors).toStrictEqual(frozen);
    for (const chunk of result.chunks) {
      const last = chunk.lines.at(-1);
      this.cursors[chunk.file] = { offset: last?.end ?? chunk.start, ino: chunk.ino, dev: chunk.dev };
    }
    for (const file of result.vanished) delete this.cursors[file];
    return result;
  }
}

function textsOf(result: ReadTranscriptsResult, file: string): string[] {
  return result.chunks.filter((chunk) => chunk.file === file).flatMap((chunk) => chunk.lines.map((line) => line.text));
}

/** snapshot lists every entry under a folder with its type, size and mtime, to prove nothing was written. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const info = await stat(path.join(dir, name)).catch(() => undefined);
    out.push(`${name} ${info?.isDirectory() ? "d" : "f"} ${info?.size} ${info?.mtimeMs}`);
  }
  const self = await stat(dir);
  out.push(`. ${self.mtimeMs}`);
  return out;
}

describe("listTranscriptFiles", () => {
  it("lists nested subagent files, ignoring other files and symlinked folders", async () => {
    await installFixture();
    await writeTranscript("projects/-srv-app/notes.txt", "x\n");
    await writeTranscript("projects/-srv-app/old.jsonl.bak", "{}\n");
    await mkdir(at("projects/-srv-app/a-dir.jsonl"));
    // A link back up the tree would loop a walker that follows links.
    await symlink(at("projects"), at("projects/-srv-app/loop"), "dir");
    await symlink(at(MAIN), at("projects/-srv-app/linked.jsonl"), "file");

    expect(await listTranscriptFiles(configDir)).toStrictEqual([MAIN, SUBAGENT]);
  });

  it("returns [] when there is no projects folder", async () => {
    await mkdir(configDir);
    expect(await listTranscriptFiles(configDir)).toStrictEqual([]);
    expect(await listTranscriptFiles(path.join(root, "missing"))).toStrictEqual([]);
  });
});

describe("readTranscripts", () => {
  it("returns every complete line of a fixture tree with its end offset", async () => {
    await installFixture();
    const result = await new Tail().read();

    expect(result.vanished).toStrictEqual([]);
    expect(result.errors).toStrictEqual([]);
    expect(result.chunks.map((chunk) => chunk.file)).toStrictEqual([MAIN, SUBAGENT]);
    for (const chunk of result.chunks) {
      const bytes = await readFile(at(chunk.file));
      const info = await stat(at(chunk.file));
      const expected = bytes.toString("utf8").split("\n").slice(0, -1);
      expect(chunk).toMatchObject({ ino: info.ino, dev: info.dev, restarted: false, start: 0 });
      expect(chunk.lines.map((line) => line.text)).toStrictEqual(expected);
      let offset = 0;
      for (const line of chunk.lines) {
        offset += Buffer.byteLength(line.text) + 1;
        expect(line.end).toBe(offset);
        expect(bytes[line.end - 1]).toBe(0x0a);
      }
      expect(chunk.lines.at(-1)?.end).toBe(info.size);
      for (const line of chunk.lines) expect(() => JSON.parse(line.text)).not.toThrow();
    }
  });

  it("holds back a partial last line and returns it once it is complete", async () => {
    await writeTranscript("projects/p/s.jsonl", '{"a":1}\n{"b":');
    const tail = new Tail();

    const first = await tail.read();
    expect(textsOf(first, "projects/p/s.jsonl")).toStrictEqual(['{"a":1}']);
    expect(first.chunks[0]?.lines[0]?.end).toBe(8);

    expect((await tail.read()).chunks).toStrictEqual([]);

    await appendFile(at("projects/p/s.jsonl"), '2}\n{"c":3}\n');
    const second = await tail.read();
    expect(second.chunks[0]?.start).toBe(8);
    expect(textsOf(second, "projects/p/s.jsonl")).toStrictEqual(['{"b":2}', '{"c":3}']);
    expect((await tail.read()).chunks).toStrictEqual([]);
  });

  it("returns only the lines appended since the cursor", async () => {
    await installFixture();
    const tail = new Tail();
    await tail.read();
    const before = (await stat(at(MAIN))).size;

    await appendFile(at(MAIN), '{"n":1}\n{"n":2}\n');
    const result = await tail.read();

    expect(result.chunks).toHaveLength(1);
    expect(result.chunks[0]).toMatchObject({ file: MAIN, start: before, restarted: false });
    expect(result.chunks[0]?.lines).toStrictEqual([
      { text: '{"n":1}', end: before + 8 },
      { text: '{"n":2}', end: before + 16 },
    ]);
  });

  it("keeps blank lines (as empty text) and strips a CRLF ending", async () => {
    await writeTranscript("projects/p/s.jsonl", '{"a":1}\r\n\n{"b":2}\n');
    const result = await new Tail().read();
    expect(result.chunks[0]?.lines).toStrictEqual([
      { text: '{"a":1}', end: 9 },
      { text: "", end: 10 },
      { text: '{"b":2}', end: 18 },
    ]);
  });

  it("starts over from 0 when a file is truncated", async () => {
    await writeTranscript("projects/p/s.jsonl", '{"a":1}\n{"b":2}\n{"c":3}\n');
    const tail = new Tail();
    await tail.read();
    const ino = (await stat(at("projects/p/s.jsonl"))).ino;

    await writeFile(at("projects/p/s.jsonl"), '{"z":9}\n');
    expect((await stat(at("projects/p/s.jsonl"))).ino).toBe(ino);
    const result = await tail.read();

    expect(result.chunks).toHaveLength(1);
    expect(result.chunks[0]).toMatchObject({ restarted: true, start: 0 });
    expect(result.chunks[0]?.lines).toStrictEqual([{ text: '{"z":9}', end: 8 }]);
  });

  it("starts over from 0 when a file is replaced by another of the same name", async () => {
    await writeTranscript("projects/p/s.jsonl", '{"a":1}\n');
    const tail = new Tail();
    await tail.read();
    const old = await stat(at("projects/p/s.jsonl"));

    // The old file stays alive elsewhere, so the new one cannot reuse its inode.
    await rename(at("projects/p/s.jsonl"), path.join(root, "moved.jsonl"));
    await writeTranscript("projects/p/s.jsonl", '{"new":1}\n{"new":2}\n');
    expect((await stat(at("projects/p/s.jsonl"))).ino).not.toBe(old.ino);
    const result = await tail.read();

    expect(result.chunks).toHaveLength(1);
    expect(result.chunks[0]).toMatchObject({ restarted: true, start: 0 });
    expect(textsOf(result, "projects/p/s.jsonl")).toStrictEqual(['{"new":1}', '{"new":2}']);
  });

  it("reports a file with a cursor that no longer exists as vanished", async () => {
    await installFixture();
    const tail = new Tail();
    await tail.read();

    await rm(at(SUBAGENT));
    const result = await tail.read();

    expect(result.vanished).toStrictEqual([SUBAGENT]);
    expect(result.chunks).toStrictEqual([]);
    expect(result.errors).toStrictEqual([]);
  });

  it("spreads a backlog over several calls under maxBytesPerFile, losing and repeating nothing", async () => {
    await installFixture();
    const tail = new Tail();
    const seen = new Map<string, string[]>();
    let calls = 0;
    for (;;) {
      const result = await tail.read({ maxBytesPerFile: 1024 });
      if (result.chunks.length === 0) break;
      calls += 1;
      expect(calls).toBeLessThan(50);
      for (const chunk of result.chunks) {
        const lines = seen.get(chunk.file) ?? [];
        lines.push(...chunk.lines.map((line) => line.text));
        seen.set(chunk.file, lines);
      }
    }

    expect(calls).toBeGreaterThan(2);
    for (const file of [MAIN, SUBAGENT]) {
      expect(`${seen.get(file)?.join("\n")}\n`).toBe(await readFile(at(file), "utf8"));
    }
  });

  it("stops at maxBytesTotal and carries on in the next call", async () => {
    await writeTranscript("projects/p/a.jsonl", '{"a":1}\n{"a":2}\n');
    await writeTranscript("projects/p/b.jsonl", '{"b":1}\n');
    const tail = new Tail();

    const first = await tail.read({ maxBytesTotal: 10 });
    expect(first.chunks.map((chunk) => chunk.file)).toStrictEqual(["projects/p/a.jsonl"]);
    expect(textsOf(first, "projects/p/a.jsonl")).toStrictEqual(['{"a":1}']);

    const second = await tail.read({ maxBytesTotal: 10 });
    expect(textsOf(second, "projects/p/a.jsonl")).toStrictEqual(['{"a":2}']);
    const third = await tail.read({ maxBytesTotal: 10 });
    expect(textsOf(third, "projects/p/b.jsonl")).toStrictEqual(['{"b":1}']);
  });

  it("decodes a multi-byte character that straddles the byte cap intact", async () => {
    // Lines of 8, 17 and 13 bytes: the first 20-byte window ends inside "本" (3 bytes).
    const lines = ['{"a":1}', '{"t":"é日本"}', '{"t":"🙂"}'];
    const content = Buffer.from(`${lines.join("\n")}\n`);
    const strict = new TextDecoder("utf-8", { fatal: true });
    expect(() => strict.decode(content.subarray(0, 20))).toThrow();
    await writeTranscript("projects/p/s.jsonl", content);
    const tail = new Tail();

    const texts: string[] = [];
    for (let call = 0; call < 5; call += 1) {
      texts.push(...textsOf(await tail.read({ maxBytesPerFile: 20 }), "projects/p/s.jsonl"));
    }
    expect(texts).toStrictEqual(lines);
    expect(tail.cursors["projects/p/s.jsonl"]?.offset).toBe(content.length);
  });

  it("skips a line longer than maxBytesPerFile instead of stalling on it", async () => {
    const long = `{"x":"${"a".repeat(100)}"}`;
    await writeTranscript("projects/p/s.jsonl", `${long}\n{"b":2}\n`);
    const tail = new Tail();

    const first = await tail.read({ maxBytesPerFile: 16 });
    expect(first.chunks[0]?.lines).toStrictEqual([{ text: "", end: long.length + 1 }]);
    const second = await tail.read({ maxBytesPerFile: 16 });
    expect(second.chunks[0]?.lines).toStrictEqual([{ text: '{"b":2}', end: long.length + 9 }]);
  });

  it("leaves an over-long line without a newline for a later call", async () => {
    await writeTranscript("projects/p/s.jsonl", `{"x":"${"a".repeat(100)}`);
    const tail = new Tail();
    expect((await tail.read({ maxBytesPerFile: 16 })).chunks).toStrictEqual([]);
    expect(tail.cursors).toStrictEqual({});
  });

  it.skipIf(process.getuid?.() === 0)("reports an unreadable file with its error code only", async () => {
    await writeTranscript("projects/ok.jsonl", '{"a":1}\n');
    await writeTranscript("projects/locked.jsonl", '{"secret":"do-not-leak"}\n');
    await chmod(at("projects/locked.jsonl"), 0o000);

    const result = await new Tail().read();

    expect(result.errors).toStrictEqual([
      { file: "projects/locked.jsonl", reason: "cannot open projects/locked.jsonl (EACCES)" },
    ]);
    expect(textsOf(result, "projects/ok.jsonl")).toStrictEqual(['{"a":1}']);
    expect(result.chunks.map((chunk) => chunk.file)).toStrictEqual(["projects/ok.jsonl"]);
  });

  it.skipIf(process.getuid?.() === 0)("reports an unreadable folder and does not call its files vanished", async () => {
    await writeTranscript("projects/locked/s.jsonl", '{"a":1}\n');
    const tail = new Tail();
    await tail.read();
    await chmod(at("projects/locked"), 0o000);

    const result = await tail.read();

    expect(result.errors).toStrictEqual([{ file: "projects/locked", reason: "cannot list projects/locked (EACCES)" }]);
    expect(result.vanished).toStrictEqual([]);
    expect(result.chunks).toStrictEqual([]);
  });

  it("writes nothing inside the config dir", async () => {
    await installFixture();
    await installFixture("config-legacy");
    await appendFile(at(MAIN), '{"partial":');
    const before = await snapshot(configDir);
    const tail = new Tail();

    await tail.read();
    await tail.read({ maxBytesPerFile: 100 });
    await tail.read();
    await listTranscriptFiles(configDir);

    expect(await snapshot(configDir)).toStrictEqual(before);
  });
});
