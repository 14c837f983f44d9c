/**
 * Fuzzing the config loader: every invalid config (wrong types, values out
 * of range, unknown keys, duplicate ids and dirs, bad paths, conflicting
 * aliases, broken cross-key rules, documents that are not objects) is
 * refused with a ConfigError naming the source, the key path and what was
 * expected; never another exception, never accepted.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, configDefaults, parseConfig } from "../../src/config/index.js";
import { invalidConfigArb, richConfig } from "./config-arbitraries.js";
import { CaseCounter, reportCases, timeoutFor } from "./fuzz-support.js";

const counter = new CaseCounter();
const homeDir = "/home/pooluser";
const SOURCES = [
  "/etc/authpool/pool.yaml",
  "<inline>",
  "C:\\authpool\\pool.json",
  "/tmp/dir with space/ü.yaml",
  "config.json",
];

afterAll(async () => {
  await reportCases("config", counter);
});

/** refusal runs parseConfig and returns the ConfigError it must throw. */
function refusal(raw: unknown, source: string): ConfigError {
  let thrown: unknown;
  try {
    parseConfig(raw, source, { homeDir });
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) expect.fail(`accepted an invalid config: ${JSON.stringify(raw)?.slice(0, 400)}`);
  if (!(thrown instanceof ConfigError)) {
    expect.fail(`threw ${String(thrown)} instead of a ConfigError for ${JSON.stringify(raw)?.slice(0, 400)}`);
  }
  return thrown;
}

describe("parseConfig", () => {
  it("accepts the rich base config the mutations start from", () => {
    // richConfig sets limits to the defaults: they come back as given, whatever the defaults are.
    expect(parseConfig(richConfig(), "<inline>", { homeDir }).limits).toEqual(configDefaults.limits);
  });

  it(
    "refuses every invalid config with a ConfigError naming the source, the path and what was expected",
    () => {
      const arb = fc.record({
        bad: invalidConfigArb(richConfig),
        source: fc.constantFrom(...SOURCES),
        json: fc.boolean(),
      });
      counter.checkSync(
        "parseConfig(invalid)",
        arb,
        ({ bad, source, json }) => {
          // A file goes through JSON (or YAML): NaN and Infinity become null there, and must still be refused.
          const raw = json ? (JSON.parse(JSON.stringify(bad.raw) ?? "null") as unknown) : bad.raw;
          const error = refusal(raw, source);
          const context = `${bad.notes.join("; ")} -> ${error.message}`;
          expect(error.file, context).toBe(source);
          expect(error.issues.length, context).toBeGreaterThan(0);
          for (const line of error.message.split("\n")) expect(line.startsWith(`${source}: `), context).toBe(true);
          for (const issue of error.issues) expect(issue.expected, context).toMatch(/^expected /);
          // The issue for (one of) the broken keys is there, in `<source>: <path>: expected ...` form.
          // A list's element is named below the list: server.authTokens[0] for server.authTokens.
          const under = (issuePath: string, p: string) =>
            issuePath === p || (p !== "" && (issuePath.startsWith(`${p}[`) || issuePath.startsWith(`${p}.`)));
          const named = error.issues.find((issue) => bad.paths.some((p) => under(issue.path, p)));
          expect(named, `no issue names ${bad.paths.join(" or ")}: ${context}`).toBeDefined();
          const line = named!.path === "" ? `${source}: expected ` : `${source}: ${named!.path}: expected `;
          expect(error.message, context).toContain(line);
        },
        1500,
      );
    },
    timeoutFor(1500, 5),
  );

  it("never echoes a secret or a token in the message", () => {
    const arb = fc.constantFrom(
      {
        path: "notifications.webhook.secret",
        raw: { notifications: { webhook: { url: "https://h.example.com", secret: ["webhook-secret-value"] } } },
      },
      {
        path: "notifications.webhookSecret",
        raw: {
          notifications: {
            webhook: { url: "https://h.example.com", secret: "a-secret-1" },
            webhookSecret: "webhook-secret-value",
          },
        },
      },
      { path: "server.authTokens", raw: { server: { authTokens: "webhook-secret-value" } } },
    );
    counter.checkSync(
      "parseConfig(secrets)",
      arb,
      ({ path, raw }) => {
        const error = refusal({ ...richConfig(), ...raw }, "<inline>");
        expect(error.message).toContain(path);
        expect(error.message).not.toContain("webhook-secret-value");
      },
      20,
    );
  });

  // A bad *element* of server.authTokens (path server.authTokens[0]) is hidden too.
  it("never echoes a bad element of server.authTokens", () => {
    counter.count("parseConfig(secrets)");
    const error = refusal({ ...richConfig(), server: { authTokens: ["webhook secret value"] } }, "<inline>");
    expect(error.message).toContain("server.authTokens[0]");
    expect(error.message).not.toContain("webhook secret value");
  });
});
