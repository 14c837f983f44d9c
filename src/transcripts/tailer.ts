/**
 * The transcripts Claude Code appends to under `<configDir>/projects/`, read
 * incrementally so the pool can see usage done outside it. Claude is writing
 * these files while we read them, so only complete lines are returned and the
 * caller keeps a cursor per file. Strictly read-only: nothing is written,
 * created or locked inside a config dir, because the directory belongs to the
 * CLI. Error reasons name the file and the error code only, never content.
 */

import type { Dirent } from "node:fs";
import { open, readdir } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";

/** PROJECTS_DIR is the config-dir folder Claude Code keeps transcripts under. */
export const PROJECTS_DIR = "projects";

/** TRANSCRIPT_EXTENSION is the suffix of a transcript file (one JSON object a line). */
export const TRANSCRIPT_EXTENSION = ".jsonl";

/** DEFAULT_MAX_BYTES_PER_FILE is the default cap on bytes read per file per call: 4 MiB. */
export const DEFAULT_MAX_BYTES_PER_FILE = 4 * 1024 * 1024;

/** DEFAULT_MAX_BYTES_TOTAL is the default cap on bytes read per call over all files: 32 MiB. */
export const DEFAULT_MAX_BYTES_TOTAL = 32 * 1024 * 1024;

/** FileCursor is how far one transcript file has been consumed. */
export interface FileCursor {
  /** Byte offset of the first byte not consumed yet. */
  offset: number;
  /** Inode of the file the offset belongs to. */
  ino: number;
  /** Device of the file the offset belongs to. */
  dev: number;
}

/** TranscriptCursors maps a file's path relative to the config dir ("projects/a/b.jsonl") to its cursor. */
export type TranscriptCursors = Record<string, FileCursor>;

/** TranscriptLine is one complete line of a transcript, newline and any trailing "\r" removed. */
export interface TranscriptLine {
  /**
   * Text of the line, decoded as UTF-8. Empty for a blank line and for a line
   * longer than `maxBytesPerFile`, which is skipped rather than returned.
   */
  text: string;
  /** Byte offset just past this line's newline. */
  end: number;
}

/** TranscriptChunk is the complete lines read from one file in one call. */
export interface TranscriptChunk {
  /** Path relative to the config dir, with forward slashes. */
  file: string;
  /** Inode of the file that was read. */
  ino: number;
  /** Device of the file that was read. */
  dev: number;
  /** True when the file was read from 0 because it was truncated or replaced (different inode) since the cursor. */
  restarted: boolean;
  /** Offset this chunk starts at. */
  start: number;
  /** Complete lines in file order; may be empty only when `restarted` is true. */
  lines: TranscriptLine[];
}

/** ReadTranscriptsOptions bounds how much one call of readTranscripts reads. */
export interface ReadTranscriptsOptions {
  /** Cap on bytes read per file per call, so a huge backlog is consumed over several calls. Default: 4 MiB. */
  maxBytesPerFile?: number;
  /** Cap on bytes per call over all files. Default: 32 MiB. */
  maxBytesTotal?: number;
}

/** TranscriptReadError is a file or folder that could not be read; `reason` names it and the error code only. */
export interface TranscriptReadError {
  file: string;
  reason: string;
}

/** ReadTranscriptsResult is what one call of readTranscripts found. */
export interface ReadTranscriptsResult {
  /** Only files with new complete lines, or that restarted. */
  chunks: TranscriptChunk[];
  /** Relative paths in `cursors` whose files no longer exist. */
  vanished: string[];
  /** Files (or folders) that could not be read (EACCES...), with a reason that names the file and the error code only. */
  errors: TranscriptReadError[];
}

/**
 * listTranscriptFiles lists the transcripts under `<configDir>/projects/`:
 * paths relative to the config dir with forward slashes, sorted; `[]` when
 * there is no `projects/`. Only regular `.jsonl` files count; symlinks are
 * not followed (a linked folder can loop) and entries that vanish mid-walk
 * are ignored. Folders that cannot be read are left out; readTranscripts
 * reports them.
 */
export async function listTranscriptFiles(configDir: string): Promise<string[]> {
  return (await walkProjects(configDir)).files;
}

/**
 * readTranscripts reads, for every transcript under the config dir, the
 * complete lines past its cursor. A file without a cursor is read from 0; so
 * is one whose inode or device changed or that is now shorter than its cursor
 * (replaced or truncated), with `restarted: true`. A trailing partial line is
 * left for a later call. `cursors` is not modified: the caller stores
 * `{ offset: <end of the last line it consumed>, ino, dev }` per chunk.
 */
export async function readTranscripts(
  configDir: string,
  cursors: Readonly<TranscriptCursors>,
  options: ReadTranscriptsOptions = {},
): Promise<ReadTranscriptsResult> {
  const maxBytesPerFile = byteCap("maxBytesPerFile", options.maxBytesPerFile, DEFAULT_MAX_BYTES_PER_FILE);
  let budget = byteCap("maxBytesTotal", options.maxBytesTotal, DEFAULT_MAX_BYTES_TOTAL);

  const walk = await walkProjects(configDir);
  const chunks: TranscriptChunk[] = [];
  const errors = [...walk.errors];
  for (const file of walk.files) {
    const outcome = await readFileChunk(configDir, file, cursors[file], maxBytesPerFile, budget);
    if (outcome.kind === "error") {
      errors.push({ file, reason: outcome.reason });
      continue;
    }
    if (outcome.kind === "gone") continue;
    budget -= outcome.bytesRead;
    if (outcome.chunk.lines.length > 0 || outcome.chunk.restarted) chunks.push(outcome.chunk);
  }

  const listed = new Set(walk.files);
  const vanished = Object.keys(cursors)
    .filter((file) => !listed.has(file) && !walk.unreadable.some((dir) => file.startsWith(`${dir}/`)))
    .sort();
  return { chunks, vanished, errors };
}

interface Walk {
  files: string[];
  errors: TranscriptReadError[];
  /** Relative folders that could not be listed: files under them are not known to be gone. */
  unreadable: string[];
}

/** walkProjects lists `projects/` recursively with readdir only; it opens no file. */
async function walkProjects(configDir: string): Promise<Walk> {
  const walk: Walk = { files: [], errors: [], unreadable: [] };
  const pending = [PROJECTS_DIR];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(configDir, ...dir.split("/")), { withFileTypes: true });
    } catch (error) {
      const code = errorCode(error);
      // Missing (no projects/ yet, or removed mid-walk) or replaced by a file: nothing to list.
      if (code === "ENOENT" || code === "ENOTDIR") continue;
      walk.unreadable.push(dir);
      walk.errors.push({ file: dir, reason: `cannot list ${dir} (${code ?? "unknown error"})` });
      continue;
    }
    for (const entry of entries) {
      const relative = `${dir}/${entry.name}`;
      // Dirent reports the link itself, so a symlink is neither a directory nor a file here:
      // linked folders are not followed (they can loop) and linked files are not read.
      if (entry.isDirectory()) pending.push(relative);
      else if (entry.isFile() && entry.name.endsWith(TRANSCRIPT_EXTENSION)) walk.files.push(relative);
    }
  }
  walk.files.sort();
  walk.errors.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return walk;
}

type FileOutcome =
  | { kind: "read"; chunk: TranscriptChunk; bytesRead: number }
  | { kind: "gone" }
  | { kind: "error"; reason: string };

/** readFileChunk reads one file's complete lines past its cursor, at most `min(maxBytesPerFile, budget)` bytes of them. */
async function readFileChunk(
  configDir: string,
  file: string,
  cursor: FileCursor | undefined,
  maxBytesPerFile: number,
  budget: number,
): Promise<FileOutcome> {
  let handle: FileHandle;
  try {
    // "r" is O_RDONLY: never creates the file, never takes a lock.
    handle = await open(path.join(configDir, ...file.split("/")), "r");
  } catch (error) {
    const code = errorCode(error);
    // Removed between listing and open: it shows up as vanished next call.
    if (code === "ENOENT" || code === "ENOTDIR") return { kind: "gone" };
    return { kind: "error", reason: `cannot open ${file} (${code ?? "unknown error"})` };
  }
  try {
    // Stat the handle, not the path, so size and inode describe the file we read.
    const stats = await handle.stat();
    const { ino, dev, size } = stats;
    const resumable =
      cursor !== undefined &&
      cursor.ino === ino &&
      cursor.dev === dev &&
      Number.isSafeInteger(cursor.offset) &&
      cursor.offset >= 0 &&
      cursor.offset <= size;
    const start = resumable ? cursor.offset : 0;
    // A first sight is not a restart: only a cursor we could not resume from is.
    const restarted = cursor !== undefined && !resumable;
    const chunk: TranscriptChunk = { file, ino, dev, restarted, start, lines: [] };

    const length = Math.max(0, Math.min(size - start, maxBytesPerFile, budget));
    if (length === 0) return { kind: "read", chunk, bytesRead: 0 };
    const buffer = Buffer.alloc(length);
    const filled = await readFully(handle, buffer, start);
    const data = buffer.subarray(0, filled);

    let lineStart = 0;
    for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a, lineStart)) {
      chunk.lines.push({ text: decodeLine(data, lineStart, newline), end: start + newline + 1 });
      lineStart = newline + 1;
    }
    // A full per-file buffer without a single newline is one line longer than the cap: it can
    // never be returned whole, so skip it rather than stall the file on it forever.
    if (chunk.lines.length === 0 && filled >= maxBytesPerFile) {
      const newline = await findNewline(handle, start + filled, size);
      if (newline !== undefined) chunk.lines.push({ text: "", end: newline + 1 });
    }
    return { kind: "read", chunk, bytesRead: filled };
  } catch (error) {
    return { kind: "error", reason: `cannot read ${file} (${errorCode(error) ?? "unknown error"})` };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** readFully reads into `buffer` from `position` until it is full or the file ends (it may have shrunk since fstat). */
async function readFully(handle: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** SCAN_CHUNK_BYTES is how much is read at a time while looking for the end of an over-long line. */
const SCAN_CHUNK_BYTES = 64 * 1024;

/** findNewline returns the offset of the first newline in [from, end), or undefined if there is none yet. */
async function findNewline(handle: FileHandle, from: number, end: number): Promise<number | undefined> {
  const buffer = Buffer.alloc(SCAN_CHUNK_BYTES);
  // Bounded by the size fstat gave, so a file that keeps growing cannot keep us here.
  for (let position = from; position < end; ) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - position), position);
    if (bytesRead === 0) return undefined;
    const index = buffer.subarray(0, bytesRead).indexOf(0x0a);
    if (index !== -1) return position + index;
    position += bytesRead;
  }
  return undefined;
}

/** decodeLine decodes bytes [from, to) as UTF-8 without a trailing "\r" (a CRLF line ending). */
function decodeLine(data: Buffer, from: number, to: number): string {
  const end = to > from && data[to - 1] === 0x0d ? to - 1 : to;
  return data.toString("utf8", from, end);
}

function byteCap(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function errorCode(error: unknown): string | undefined {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}
