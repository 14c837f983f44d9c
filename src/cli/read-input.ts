import { readFile } from "node:fs/promises";
import { UsageError } from "./usage-error.js";

/** readInput reads a file, or all of stdin for `-`; an unreadable file is a UsageError. */
export async function readInput(source: string, stdin: NodeJS.ReadableStream): Promise<string> {
  if (source !== "-") {
    return readFile(source, "utf8").catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${source}: ${error.code ?? error.message}`);
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}
