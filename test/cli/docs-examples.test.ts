import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/program.js";
import { textSink } from "./text-sink.js";

/**
 * Every `authpool …` command the operator docs show, parsed by the real
 * command tree (nothing runs, nothing is called): a renamed flag, a
 * removed command or a bad value in the docs fails here instead of in an
 * operator's terminal.
 */

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");

/** cliSection is README's "The `authpool` CLI" section, the part of the README about the CLI. */
function cliSection(readme: string): string {
  const start = readme.indexOf("### The `authpool` CLI");
  const end = readme.indexOf("\n## ", start);
  return readme.slice(start, end);
}

const SOURCES = [
  { name: "docs/operations.md", text: read("docs/operations.md") },
  { name: "README.md (CLI)", text: cliSection(read("README.md")) },
];

/** examples finds the commands: prompts and lines of code blocks, and code spans in the prose. */
function examples(markdown: string): string[] {
  const found: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split("\n")) {
    const opening = /^\s*```(\w*)/.exec(line);
    if (opening !== null) {
      fence = fence === undefined ? (opening[1] ?? "") : undefined;
      continue;
    }
    if (fence === undefined) continue;
    // A console block's commands are the prompts; the rest is their output.
    const command = fence === "console" ? /^\$ (.*)$/.exec(line)?.[1] : line.trim();
    if (command !== undefined) found.push(...commandsIn(command));
  }
  for (const span of proseSpans(markdown)) {
    // A bare name in a sentence ("`authpool exec` makes …") names the command: it must exist.
    found.push(...commandsIn(span).map((c) => (/^authpool [a-z-]+$/.test(c) ? `${c} --help` : c)));
  }
  return found.filter((command) => command !== "authpool");
}

/** proseSpans are the code spans outside code blocks, whitespace made single spaces. */
function proseSpans(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, "");
  return [...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s+/g, " "));
}

/** commandsIn takes the `authpool` commands out of one shell line (after env assignments, before pipes and comments). */
function commandsIn(line: string): string[] {
  return line
    .split(/\s*(?:;|&&|\|)\s*/)
    .map((part) => part.replace(/^(?:[A-Z_]+=(?:<[^>]*>|\S*)\s+)*/, ""))
    .filter((part) => part.startsWith("authpool ") || part === "authpool");
}

/** argv splits a command as a shell would, for the quoting the docs use: "…" and '…'. */
function argv(command: string): string[] {
  const words: string[] = [];
  for (const m of command.matchAll(/"([^"]*)"|'([^']*)'|(#.*$)|(\S+)/g)) {
    if (m[3] !== undefined) break; // a comment
    words.push(m[1] ?? m[2] ?? m[4]!);
  }
  return words.slice(1);
}

async function run(args: string[], options: { parseOnly?: boolean } = {}): Promise<{ code: number; out: string }> {
  const stdout = textSink();
  const stderr = textSink();
  const code = await runCli(args, { stdout, stderr, env: {}, home: "/nonexistent", ...options });
  return { code, out: stdout.text() + stderr.text() };
}

describe.each(SOURCES)("the authpool commands in $name", ({ text }) => {
  const commands = [...new Set(examples(text))];

  it("should be there to check", () => {
    expect(commands.length).toBeGreaterThan(5);
  });

  it.each(commands)("should parse: %s", async (command) => {
    const { code, out } = await run(argv(command), { parseOnly: true });
    expect(code, out).toBe(0);
  });
});

/** allHelp is the --help of a command and of every command under it. */
async function allHelp(command: string[]): Promise<string> {
  const { out } = await run([...command, "--help"]);
  const at = out.indexOf("\nCommands:");
  const commands = at < 0 ? "" : out.slice(at);
  const names = [...commands.matchAll(/^ {2}([a-z]+)(?: |$)/gm)].map((m) => m[1]!).filter((n) => n !== "help");
  const below = await Promise.all(names.map((name) => allHelp([...command, name])));
  return [out, ...below].join("\n");
}

describe("the flags docs/operations.md names in its prose", () => {
  const flags = [
    ...new Set(proseSpans(read("docs/operations.md")).flatMap((span) => span.match(/^--[a-z][a-z-]*/) ?? [])),
  ];

  it.each(flags)("should be one --help shows: %s", async (flag) => {
    // Hidden aliases (--after, --url) are kept for old scripts, not taught.
    expect(await allHelp([])).toMatch(new RegExp(`${flag}\\b`));
  });
});
