import { afterEach, describe, expect, it, vi } from "vitest";
import { type JsonLoggerOptions, createJsonLogger, silentLogger } from "../../src/runtime/logger.js";

/** capture returns a logger writing into an array and the lines parsed so far. */
function capture(options: Omit<JsonLoggerOptions, "destination"> = {}) {
  const lines: string[] = [];
  const logger = createJsonLogger({ ...options, destination: { write: (s: string) => lines.push(s) } });
  const parsed = () =>
    lines
      .join("")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, parsed };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("createJsonLogger()", () => {
  it("should write one JSON line with level label, ISO time, message and flat fields", () => {
    const { logger, lines, parsed } = capture({ level: "info", env: {} });
    logger.info("pool loaded", { store: "sqlite://x", sessions: 3, nested: { a: 1 } });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith("\n")).toBe(true);
    const [line] = parsed();
    expect(line).toEqual({
      level: "info",
      time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      message: "pool loaded",
      store: "sqlite://x",
      sessions: 3,
      nested: { a: 1 },
    });
    expect(new Date(line!.time as string).toISOString()).toBe(line!.time);
    expect(line).not.toHaveProperty("pid");
    expect(line).not.toHaveProperty("hostname");
  });

  it("should write a line without fields", () => {
    const { logger, parsed } = capture({ env: {} });
    logger.warn("just this");
    expect(parsed()).toEqual([{ level: "warn", time: expect.any(String), message: "just this" }]);
  });

  it.each([
    { name: "debug writes all", level: "debug", written: ["debug", "info", "warn", "error"] },
    { name: "info drops debug", level: "info", written: ["info", "warn", "error"] },
    { name: "warn", level: "warn", written: ["warn", "error"] },
    { name: "error", level: "error", written: ["error"] },
    { name: "silent writes nothing", level: "silent", written: [] },
  ] as const)("should filter by level: $name", ({ level, written }) => {
    const { logger, parsed } = capture({ level, env: {} });
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(parsed().map((l) => l.level)).toEqual(written);
  });

  it("should redact secret keys at the top level and nested", () => {
    const { logger, lines, parsed } = capture({ env: {} });
    logger.info("webhook", {
      token: "t-top",
      url: "https://example.com/hook",
      webhook: { secret: "s-nested", url: "https://example.com/hook" },
      headers: { authorization: "Bearer b-nested", "content-type": "application/json" },
      credentials: { accessToken: "a-nested", refreshToken: "r-nested", expiresAt: 5 },
      request: { signature: "sig-nested", password: "p-nested", apiKey: "k-nested" },
    });
    const [line] = parsed();
    expect(line).toMatchObject({
      token: "[redacted]",
      url: "https://example.com/hook",
      webhook: { secret: "[redacted]", url: "https://example.com/hook" },
      headers: { authorization: "[redacted]", "content-type": "application/json" },
      credentials: { accessToken: "[redacted]", refreshToken: "[redacted]", expiresAt: 5 },
      request: { signature: "[redacted]", password: "[redacted]", apiKey: "[redacted]" },
    });
    for (const secret of [
      "t-top",
      "s-nested",
      "b-nested",
      "a-nested",
      "r-nested",
      "sig-nested",
      "p-nested",
      "k-nested",
    ]) {
      expect(lines.join("")).not.toContain(secret);
    }
  });

  it("should take the level from AUTHPOOL_LOG_LEVEL when none is given", () => {
    const { logger, parsed } = capture({ env: { AUTHPOOL_LOG_LEVEL: "debug" } });
    logger.debug("d");
    expect(parsed().map((l) => l.message)).toEqual(["d"]);
  });

  it("should read AUTHPOOL_LOG_LEVEL from process.env by default, the option winning over it", () => {
    vi.stubEnv("AUTHPOOL_LOG_LEVEL", "ERROR");
    const fromEnv = capture();
    fromEnv.logger.warn("w");
    fromEnv.logger.error("e");
    expect(fromEnv.parsed().map((l) => l.message)).toEqual(["e"]);
    const explicit = capture({ level: "warn" });
    explicit.logger.warn("w");
    expect(explicit.parsed().map((l) => l.message)).toEqual(["w"]);
  });

  it("should default to info and warn once about an AUTHPOOL_LOG_LEVEL that is not a level", () => {
    const { logger, parsed } = capture({ env: { AUTHPOOL_LOG_LEVEL: "loud" } });
    logger.debug("d");
    logger.info("i");
    expect(parsed()).toEqual([
      expect.objectContaining({ level: "warn", message: "AUTHPOOL_LOG_LEVEL ignored", value: "loud" }),
      expect.objectContaining({ level: "info", message: "i" }),
    ]);
  });

  it("should still accept a destination as its only argument", () => {
    const lines: string[] = [];
    createJsonLogger({ write: (s: string) => lines.push(s) }).info("old form", { n: 1 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", message: "old form", n: 1 });
  });
});

describe("silentLogger", () => {
  it("should accept every level and write nothing", () => {
    expect(() => {
      silentLogger.debug("d");
      silentLogger.info("i", { token: "x" });
      silentLogger.warn("w");
      silentLogger.error("e");
    }).not.toThrow();
  });
});
