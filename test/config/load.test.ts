import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyEnv,
  ConfigError,
  configDefaults,
  defaultConfigPath,
  loadConfigFile,
  parseConfig,
  type PoolConfig,
} from "../../src/config/index.js";
import { FIVE_HOUR_CAP_UNPOLLED } from "../../src/config/defaults.js";
import { loginStatus, readLoginFacts } from "../../src/credentials/index.js";
import { parseError } from "../support/config-error.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const homeDir = "/home/pooluser";

// The original design's example, verbatim: it must keep loading unchanged.
const legacyJson =
  '{"subscriptions":[{"id":"sub1","email":"user1@example.com","type":"claude-pro","configDir":"~/.claude-sub1","weeklyBudget":456,"maxClientsPerSub":15},{"id":"sub2","email":"user2@example.com","type":"claude-pro","configDir":"~/.claude-sub2","weeklyBudget":456,"maxClientsPerSub":15},{"id":"sub3","email":"user3@example.com","type":"claude-pro","configDir":"~/.claude-sub3","weeklyBudget":456,"maxClientsPerSub":15}],"maxClientsPerSubscription":15,"weeklyBudgetThreshold":0.85,"fallbackWhenExhausted":true,"rebalancing":{"enabled":true,"intervalSeconds":300,"costGapThreshold":5.0,"maxClientsToMovePerCycle":3},"notifications":{"rules":[{"type":"usage_threshold","threshold":0.8,"channels":["webhook","log"],"enabled":true},{"type":"usage_threshold","threshold":0.9,"channels":["webhook","log"],"enabled":true},{"type":"failover","channels":["webhook"],"enabled":true},{"type":"rotation","channels":["log"],"enabled":true}],"webhookUrl":"https://your-webhook-endpoint.com/notify"}}';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "authpool-config-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function write(name: string, content: string): Promise<string> {
  const file = path.join(tmp, name);
  await writeFile(file, content, "utf8");
  return file;
}

async function loadError(file: string): Promise<ConfigError> {
  try {
    await loadConfigFile(file, { homeDir });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  return expect.fail(`expected ${file} to be rejected, but it loaded`);
}

type Raw = Record<string, unknown> & { subscriptions: Record<string, unknown>[] };

function validRaw(): Raw {
  return {
    subscriptions: [
      { id: "a", type: "claude-pro", configDir: "~/.claude-a", weeklyBudgetUsd: 100 },
      { id: "b", type: "claude-max", configDir: "/srv/claude-b", weeklyBudgetUsd: 500 },
    ],
  };
}

function sub(raw: Raw, index: number): Record<string, unknown> {
  const entry = raw.subscriptions[index];
  if (entry === undefined) throw new Error(`no subscription ${index}`);
  return entry;
}

describe("legacy config", () => {
  const legacyFile = path.join(repoRoot, "config/legacy-example.json");

  it("is the original design's file, unchanged", async () => {
    expect(JSON.parse(await readFile(legacyFile, "utf8"))).toEqual(JSON.parse(legacyJson));
  });

  it("loads with aliases folded into canonical keys", async () => {
    const config = await loadConfigFile(legacyFile, { homeDir });
    expect(config.source).toBe(legacyFile);
    expect(config.subscriptions.map((s) => s.id)).toEqual(["sub1", "sub2", "sub3"]);
    const first = config.subscriptions[0];
    expect(first).toEqual({
      id: "sub1",
      email: "user1@example.com",
      type: "claude-pro",
      configDir: path.join(homeDir, ".claude-sub1"),
      weeklyBudgetUsd: 456,
      upstreamUsage: configDefaults.upstream.enabled,
      transcripts: configDefaults.transcripts.enabled,
      manageCredentials: configDefaults.credentials.manage,
      fiveHourBudgetUsd: 456 / configDefaults.fiveHourBudgetDivisor,
      maxSessions: 15,
      fiveHourCap: configDefaults.upstream.fiveHourCap,
    });
    expect(config.subscriptions[2]?.configDir).toBe(path.join(homeDir, ".claude-sub3"));
    expect(config.weeklyBudgetThreshold).toBe(0.85);
    expect(config.fallback).toEqual({ enabled: true, provider: configDefaults.fallback.provider });
    expect(config.rebalancing).toEqual({
      enabled: true,
      intervalSeconds: 300,
      costGapThreshold: 5,
      maxMovesPerCycle: 3,
    });
    expect(config.notifications.webhook?.url).toBe("https://your-webhook-endpoint.com/notify");
    expect(config.notifications.rules).toHaveLength(4);
    expect(config.notifications.rules[2]).toEqual({
      type: "failover",
      channels: ["webhook"],
      enabled: true,
    });
  });

  it("loads the same from inline JSON", () => {
    const config = parseConfig(JSON.parse(legacyJson), "<inline>", { homeDir });
    expect(config.source).toBe("<inline>");
    expect(config.subscriptions[1]?.maxSessions).toBe(15);
  });
});

describe("config/example.yaml", () => {
  it("is the default path and loads", async () => {
    expect(defaultConfigPath).toBe("config/example.yaml");
    const config = await loadConfigFile(path.join(repoRoot, defaultConfigPath), { homeDir });
    const demo = path.join(repoRoot, "config/demo-pool");
    expect(config.subscriptions.map((s) => [s.id, s.type, s.configDir])).toEqual([
      ["pro-1", "claude-pro", path.join(demo, ".claude-pro-1")],
      ["pro-2", "claude-pro", path.join(demo, ".claude-pro-2")],
      ["max-1", "claude-max", path.join(demo, ".claude-max-1")],
    ]);
    expect(config.server).toStrictEqual(configDefaults.server);
    expect(config.notifications.webhook).toBeUndefined();
  });

  // The README's quick start: `npm start` serves this file and Allocate answers with a grant.
  it("ships demo config dirs that pass the login check", async () => {
    const config = await loadConfigFile(path.join(repoRoot, defaultConfigPath), { homeDir });
    for (const sub of config.subscriptions) {
      const status = loginStatus(await readLoginFacts(sub.configDir), Date.now(), "linux");
      expect(status.kind, sub.id).toBe("ok");
    }
  });
});

describe("relative config dirs", () => {
  it("takes ./ from the config file's directory, wherever the pool runs", async () => {
    const file = await write(
      "relative.yaml",
      ["subscriptions:", "  - id: a", "    type: claude-pro", "    configDir: ./dirs/a", "    weeklyBudgetUsd: 1"].join(
        "\n",
      ),
    );
    const config = await loadConfigFile(file, { homeDir });
    expect(config.subscriptions[0]?.configDir).toBe(path.join(tmp, "dirs/a"));
  });

  it("takes ./ from the working directory for an inline config, and from baseDir when given", () => {
    const raw = validRaw();
    sub(raw, 0).configDir = "./a";
    expect(parseConfig(raw, "<inline>", { homeDir }).subscriptions[0]?.configDir).toBe(path.resolve("a"));
    expect(parseConfig(raw, "<inline>", { homeDir, baseDir: "/srv/pool" }).subscriptions[0]?.configDir).toBe(
      "/srv/pool/a",
    );
  });

  it.each([
    ["a bare relative path (a forgotten ~/?)", "claude-a", /"\.\/" \(relative to the config file\)/],
    ["a hop out of the config's directory", "./../claude-a", /"\.\."/],
  ])("rejects %s", (_name, configDir, message) => {
    const raw = validRaw();
    sub(raw, 0).configDir = configDir;
    const error = parseError(() => parseConfig(raw, "<inline>", { homeDir }));
    expect(error.issues[0]).toMatchObject({
      path: "subscriptions[0].configDir",
      expected: expect.stringMatching(message),
    });
  });
});

describe("formats and defaults", () => {
  const yamlText = [
    "subscriptions:",
    "  - id: a",
    "    type: claude-pro",
    "    configDir: ~/.claude-a",
    "    weeklyBudgetUsd: 100",
    "  - id: b",
    "    type: claude-max",
    "    configDir: /srv/claude-b",
    "    weeklyBudgetUsd: 500",
    "",
  ].join("\n");

  it.each([
    ["pool.yaml", yamlText],
    ["pool.yml", yamlText],
    ["pool.json", JSON.stringify(validRaw(), null, 2)],
    ["pool.conf", JSON.stringify(validRaw())],
    ["pool-yaml.conf", yamlText],
    ["bom.json", `\uFEFF${JSON.stringify(validRaw())}`],
  ])("%s loads to the same config", async (name, text) => {
    const file = await write(name, text);
    const config = await loadConfigFile(file, { homeDir });
    const inline = parseConfig(validRaw(), "<inline>", { homeDir });
    expect(config.source).toBe(file);
    expect({ ...config, source: "" }).toEqual({ ...inline, source: "" });
  });

  // The expected config is put together from configDefaults by hand, section by section, not by
  // resolve.ts: a default the resolver drops or puts at another key fails here, and a changed
  // default is checked at its new value. A section added to configDefaults lands in `sameName`
  // and fails until the resolver places it under its own name or it is listed as an exception.
  it("applies every default", () => {
    const {
      maxSessionsPerSubscription,
      fiveHourBudgetDivisor,
      lowPriorityShareOfThreshold: _share,
      client,
      webhook,
      slack,
      notificationChannels,
      upstream,
      ...sameName
    } = configDefaults;
    const perSubscription = {
      email: "",
      maxSessions: maxSessionsPerSubscription,
      upstreamUsage: upstream.enabled,
      transcripts: sameName.transcripts.enabled,
      manageCredentials: sameName.credentials.manage,
      // The one default that depends on another: without polling, readings can be hours old.
      fiveHourCap: upstream.enabled ? upstream.fiveHourCap : FIVE_HOUR_CAP_UNPOLLED,
    };
    const expected: PoolConfig = {
      ...sameName,
      source: "<inline>",
      subscriptions: [
        {
          id: "a",
          type: "claude-pro",
          configDir: path.join(homeDir, ".claude-a"),
          weeklyBudgetUsd: 100,
          fiveHourBudgetUsd: 100 / fiveHourBudgetDivisor,
          ...perSubscription,
        },
        {
          id: "b",
          type: "claude-max",
          configDir: "/srv/claude-b",
          weeklyBudgetUsd: 500,
          fiveHourBudgetUsd: 500 / fiveHourBudgetDivisor,
          ...perSubscription,
        },
      ],
      // Worked out per account from its own weekly threshold (domain/view.ts).
      lowPriorityThreshold: "auto",
      upstream: { ...upstream, fiveHourCap: upstream.enabled ? upstream.fiveHourCap : FIVE_HOUR_CAP_UNPOLLED },
      notifications: { rules: [] },
      clients: {},
    };
    const config = parseConfig(validRaw(), "<inline>", { homeDir });
    expect(config).toStrictEqual(expected);
    expect(Object.isFrozen(config.subscriptions[0])).toBe(true);
    expect(Object.isFrozen(configDefaults.server)).toBe(true);

    // The sections a minimal config has none of, each given bare.
    const webhookUrl = "https://hooks.example.com/n";
    const slackUrl = "https://hooks.slack.com/services/T0/B0/x";
    const notifications = { rules: [{ type: "failover" }], webhook: { url: webhookUrl }, slack: { url: slackUrl } };
    expect(parseConfig({ ...validRaw(), clients: { bare: {} }, notifications }, "<inline>", { homeDir })).toStrictEqual(
      {
        ...expected,
        clients: { bare: client },
        notifications: {
          rules: [{ type: "failover", channels: notificationChannels, enabled: true }],
          webhook: { url: webhookUrl, ...webhook },
          slack: { url: slackUrl, ...slack },
        },
      },
    );
  });

  it.each<[Record<string, unknown>, number | string, number | string]>([
    [{ weeklyBudgetThreshold: "auto" }, "auto", "auto"],
    [{ weeklyBudgetThreshold: "auto", lowPriorityThreshold: 0.7 }, "auto", 0.7],
    [{ weeklyBudgetThreshold: 0.8 }, 0.8, "auto"],
    [{ weeklyBudgetThreshold: 0.8, lowPriorityThreshold: 0.6 }, 0.8, 0.6],
  ])("weekly thresholds %j resolve to %j and %j", (keys, weekly, low) => {
    const raw = { ...validRaw(), ...keys };
    const config = parseConfig(raw, "<inline>", { homeDir });
    expect([config.weeklyBudgetThreshold, config.lowPriorityThreshold]).toEqual([weekly, low]);
  });

  it("keeps a subscription's own weekly threshold, and only its own", () => {
    const raw = validRaw();
    sub(raw, 0).weeklyBudgetThreshold = "auto";
    sub(raw, 1).weeklyBudgetThreshold = 0.7;
    const config = parseConfig(raw, "<inline>", { homeDir });
    expect(config.subscriptions.map((s) => s.weeklyBudgetThreshold)).toEqual(["auto", 0.7]);
    expect(config.weeklyBudgetThreshold).toBe(configDefaults.weeklyBudgetThreshold);
    expect("weeklyBudgetThreshold" in parseConfig(validRaw(), "<inline>", { homeDir }).subscriptions[0]!).toBe(false);
  });

  it.each([
    [{ enabled: true }, true, configDefaults.upstream.fiveHourCap],
    [{ enabled: false }, false, FIVE_HOUR_CAP_UNPOLLED],
    [{ enabled: false, fiveHourCap: 0.9 }, false, 0.9],
    [{ fiveHourCap: 0.9 }, configDefaults.upstream.enabled, 0.9],
  ])("upstream %j polls %j with a 5-hour cap of %j", (upstream, enabled, cap) => {
    const config = parseConfig({ ...validRaw(), upstream }, "<inline>", { homeDir });
    expect([config.upstream.enabled, config.upstream.fiveHourCap]).toEqual([enabled, cap]);
    expect(config.subscriptions.map((s) => [s.upstreamUsage, s.fiveHourCap])).toEqual([
      [enabled, cap],
      [enabled, cap],
    ]);
  });

  it.each([
    // An account left out of polling has hours-old readings: it stops earlier, the polled one does not.
    [{ enabled: true }, [false, true], [FIVE_HOUR_CAP_UNPOLLED, configDefaults.upstream.fiveHourCap]],
    [{ enabled: false }, [true, false], [configDefaults.upstream.fiveHourCap, FIVE_HOUR_CAP_UNPOLLED]],
    // A cap the config names holds for every account.
    [{ enabled: true, fiveHourCap: 0.9 }, [false, true], [0.9, 0.9]],
  ])("upstream %j with upstreamUsage %j caps the 5-hour window at %j", (upstream, polled, caps) => {
    const raw = { ...validRaw(), upstream };
    sub(raw, 0).upstreamUsage = polled[0];
    sub(raw, 1).upstreamUsage = polled[1];
    const config = parseConfig(raw, "<inline>", { homeDir });
    expect(config.subscriptions.map((s) => [s.upstreamUsage, s.fiveHourCap])).toEqual([
      [polled[0], caps[0]],
      [polled[1], caps[1]],
    ]);
  });

  it("takes per-pool defaults and derived thresholds", () => {
    const raw = validRaw();
    delete sub(raw, 0).weeklyBudgetUsd;
    raw.defaults = { weeklyBudgetUsd: 200 };
    raw.maxSessionsPerSubscription = 4;
    raw.weeklyBudgetThreshold = 0.5;
    sub(raw, 1).maxSessions = 9;
    sub(raw, 1).expectedWindowCost = 33;
    const config = parseConfig(raw, "<inline>", { homeDir });
    expect(config.subscriptions[0]).toMatchObject({
      weeklyBudgetUsd: 200,
      fiveHourBudgetUsd: 200 / configDefaults.fiveHourBudgetDivisor,
      maxSessions: 4,
    });
    expect(config.subscriptions[1]).toMatchObject({ maxSessions: 9, fiveHourBudgetUsd: 33 });
    expect([config.weeklyBudgetThreshold, config.lowPriorityThreshold]).toEqual([0.5, "auto"]);
  });

  // Values differ from the defaults so a dropped alias cannot pass unnoticed.
  it("maps every alias to its canonical key", () => {
    const raw: Raw = {
      subscriptions: [
        {
          id: "a",
          type: "claude-pro",
          configDir: "/srv/a",
          weeklyBudget: 300,
          maxClientsPerSub: 7,
          fiveHourBudget: 31,
        },
        { id: "b", type: "claude-pro", configDir: "/srv/b", weeklyBudget: 300, expectedWindowCost: 29 },
      ],
      maxClientsPerSubscription: 4,
      fallbackWhenExhausted: false,
      fallbackProvider: "other-api",
      rebalancing: { maxClientsToMovePerCycle: 9 },
      notifications: { webhookUrl: "http://hooks.example.com/n", webhookSecret: "s" },
    };
    const config = parseConfig(raw, "<inline>", { homeDir });
    expect(config.subscriptions[0]).toMatchObject({
      weeklyBudgetUsd: 300,
      maxSessions: 7,
      fiveHourBudgetUsd: 31,
    });
    expect(config.subscriptions[1]).toMatchObject({ maxSessions: 4, fiveHourBudgetUsd: 29 });
    expect(config.fallback).toEqual({ enabled: false, provider: "other-api" });
    expect(config.rebalancing.maxMovesPerCycle).toBe(9);
    expect(config.notifications.webhook).toEqual({
      url: "http://hooks.example.com/n",
      secret: "s",
      ...configDefaults.webhook,
    });
  });

  it("accepts an alias next to its canonical key when they agree", () => {
    const raw = validRaw();
    sub(raw, 0).weeklyBudget = 100;
    raw.fallbackWhenExhausted = false;
    raw.fallback = { enabled: false };
    const config = parseConfig(raw, "<inline>", { homeDir });
    expect(config.subscriptions[0]?.weeklyBudgetUsd).toBe(100);
    expect(config.fallback.enabled).toBe(false);
  });

  it("normalises config dirs", () => {
    const raw = validRaw();
    sub(raw, 0).configDir = "~";
    sub(raw, 1).configDir = "/srv//claude-b/./x/";
    const config = parseConfig(raw, "<inline>", { homeDir });
    expect(config.subscriptions.map((s) => s.configDir)).toEqual([homeDir, "/srv/claude-b/x"]);
  });

  it("treats an empty YAML section as absent", async () => {
    const file = await write("empty-section.yaml", `${yamlText}notifications:\nserver:\n`);
    const config = await loadConfigFile(file, { homeDir });
    expect(config.notifications).toEqual({ rules: [] });
    expect(config.server.port).toBe(configDefaults.server.port);
  });
});

type Mutation = (raw: Raw) => void;

describe("invalid configs", () => {
  it.each<[string, Mutation, string, RegExp?]>([
    [
      "duplicate ids",
      (r) => {
        sub(r, 1).id = "a";
      },
      "subscriptions[1].id",
      /"a" which subscriptions\[0\]\.id already uses/,
    ],
    ["budget 0", (r) => void (sub(r, 0).weeklyBudgetUsd = 0), "subscriptions[0].weeklyBudgetUsd", /got 0$/],
    [
      "budget -1 (legacy key)",
      (r) => {
        delete sub(r, 1).weeklyBudgetUsd;
        sub(r, 1).weeklyBudget = -1;
      },
      "subscriptions[1].weeklyBudget",
      /expected a number > 0, got -1$/,
    ],
    [
      "budget missing",
      (r) => void delete sub(r, 0).weeklyBudgetUsd,
      "subscriptions[0].weeklyBudgetUsd",
      /defaults\.weeklyBudgetUsd/,
    ],
    ["threshold 0", (r) => void (r.weeklyBudgetThreshold = 0), "weeklyBudgetThreshold", /\(0, 1\], got 0$/],
    ["threshold 1.5", (r) => void (r.weeklyBudgetThreshold = 1.5), "weeklyBudgetThreshold", /got 1\.5$/],
    ["threshold a word", (r) => void (r.weeklyBudgetThreshold = "half"), "weeklyBudgetThreshold", /or "auto"/],
    [
      "subscription threshold a word",
      (r) => void (sub(r, 1).weeklyBudgetThreshold = "half"),
      "subscriptions[1].weeklyBudgetThreshold",
      /or "auto"/,
    ],
    [
      "low-priority above threshold",
      (r) => {
        r.weeklyBudgetThreshold = 0.5;
        r.lowPriorityThreshold = 0.6;
      },
      "lowPriorityThreshold",
      /<= weeklyBudgetThreshold \(0\.5\)/,
    ],
    ["NUL in configDir", (r) => void (sub(r, 0).configDir = "/srv/a\0b"), "subscriptions[0].configDir", /NUL/],
    ["newline in configDir", (r) => void (sub(r, 1).configDir = "/srv/a\nb"), "subscriptions[1].configDir", /control/],
    ["relative configDir", (r) => void (sub(r, 0).configDir = ".claude-a"), "subscriptions[0].configDir", /absolute/],
    ["~user configDir", (r) => void (sub(r, 0).configDir = "~bob/.claude"), "subscriptions[0].configDir", /absolute/],
    ["'..' in configDir", (r) => void (sub(r, 1).configDir = "/srv/../etc"), "subscriptions[1].configDir", /"\.\."/],
    ["URL configDir", (r) => void (sub(r, 0).configDir = "file:///srv/a"), "subscriptions[0].configDir", /not a URL/],
    [
      "shared configDir",
      (r) => void (sub(r, 1).configDir = path.join(homeDir, ".claude-a")),
      "subscriptions[1].configDir",
      /subscriptions\[0\]\.configDir/,
    ],
    [
      "unknown key weeklyBudgt",
      (r) => {
        delete sub(r, 0).weeklyBudgetUsd;
        sub(r, 0).weeklyBudgt = 100;
      },
      "subscriptions[0].weeklyBudgt",
      /did you mean "weeklyBudget"\?/,
    ],
    ["unknown top-level key", (r) => void (r.fallbak = true), "fallbak", /did you mean "fallback"\?/],
    [
      "alias conflict",
      (r) => void (sub(r, 0).weeklyBudget = 456),
      "subscriptions[0].weeklyBudget",
      /subscriptions\[0\]\.weeklyBudgetUsd and subscriptions\[0\]\.weeklyBudget .*100 and 456/,
    ],
    [
      "top-level alias conflict",
      (r) => {
        r.fallback = { enabled: true };
        r.fallbackWhenExhausted = false;
      },
      "fallbackWhenExhausted",
      /fallback\.enabled and fallbackWhenExhausted/,
    ],
    ["port 70000", (r) => void (r.server = { port: 70000 }), "server.port", /0-65535, got 70000$/],
    ["port 80.5", (r) => void (r.server = { port: 80.5 }), "server.port", /got 80\.5$/],
    ["bad zone", (r) => void (r.cooldown = { timeZone: "Mars/Olympus_Mons" }), "cooldown.timeZone", /IANA/],
    ["bad id", (r) => void (sub(r, 0).id = "-a"), "subscriptions[0].id", /got "-a"$/],
    ["bad type", (r) => void (sub(r, 0).type = "claude-ultra"), "subscriptions[0].type", /"claude-max"/],
    ["maxSessions 0", (r) => void (sub(r, 0).maxSessions = 0), "subscriptions[0].maxSessions", /integer >= 1/],
    [
      "maxSessions 1.5",
      (r) => void (sub(r, 0).maxClientsPerSub = 1.5),
      "subscriptions[0].maxClientsPerSub",
      /integer >= 1/,
    ],
    ["no subscriptions", (r) => void (r.subscriptions = []), "subscriptions", /at least one/],
    [
      "non-http webhook",
      (r) => void (r.notifications = { webhookUrl: "ftp://example.com/x" }),
      "notifications.webhookUrl",
      /http/,
    ],
    [
      "webhook channel without a webhook",
      (r) => void (r.notifications = { rules: [{ type: "failover", channels: ["webhook"] }] }),
      "notifications.rules[0].channels",
      /notifications\.webhook\.url/,
    ],
    [
      "usage_threshold without threshold",
      (r) => void (r.notifications = { rules: [{ type: "usage_threshold" }] }),
      "notifications.rules[0].threshold",
      /missing/,
    ],
    [
      "all health weights 0",
      (r) => void (r.health = { weights: { weekly: 0, fiveHour: 0, sessions: 0, burnRate: 0, idle: 0 } }),
      "health.weights",
      /> 0/,
    ],
  ])("%s", async (name, mutate, expectedPath, detail) => {
    const raw = validRaw();
    mutate(raw);
    const file = await write(`bad-${name.replace(/\W+/g, "-")}.json`, JSON.stringify(raw));
    const error = await loadError(file);
    expect(error.file).toBe(file);
    expect(error.path).toBe(expectedPath);
    expect(error.message.startsWith(`${file}: ${expectedPath}: expected `)).toBe(true);
    expect(error.message.split("\n")[0]).toBe(`${file}: ${error.path}: ${error.expected}`);
    if (detail) expect(error.expected).toMatch(detail);
  });

  it("reports every issue, one per line", () => {
    const raw = validRaw();
    sub(raw, 0).weeklyBudgetUsd = -5;
    raw.server = { port: -1 };
    const error = parseError(() => parseConfig(raw, "config/pool.json"));
    expect(error.message.split("\n")).toEqual([
      "config/pool.json: subscriptions[0].weeklyBudgetUsd: expected a number > 0, got -5",
      "config/pool.json: server.port: expected an integer port 0-65535, got -1",
    ]);
    expect(error.issues).toHaveLength(2);
  });

  it("never echoes a webhook secret", () => {
    const raw = validRaw();
    raw.notifications = {
      webhook: { url: "https://hooks.example.com/x", secret: "hunter2" },
      webhookSecret: "hunter3",
    };
    const error = parseError(() => parseConfig(raw, "<inline>"));
    expect(error.path).toBe("notifications.webhookSecret");
    expect(error.message).not.toMatch(/hunter/);
  });

  it("rejects a document that is not an object", () => {
    const error = parseError(() => parseConfig([1, 2], "list.json"));
    expect(error.path).toBe("");
    expect(error.message).toBe("list.json: expected an object of config keys, got a list");
  });
});

describe("unreadable files", () => {
  it("names a missing file", async () => {
    const file = path.join(tmp, "does-not-exist.yaml");
    const error = await loadError(file);
    expect(error.file).toBe(file);
    expect(error.message).toMatch(new RegExp(`^${escapeRegExp(file)}: expected a readable config file, got .*ENOENT`));
  });

  it("gives line and column for bad JSON", async () => {
    const file = await write("broken.json", '{\n  "subscriptions": [\n    {"id": "a",}\n  ]\n}\n');
    const error = await loadError(file);
    expect(error.line).toBe(3);
    expect(error.column).toBe(16);
    expect(error.message.startsWith(`${file}: line 3, column 16: expected valid JSON`)).toBe(true);
  });

  it("gives line and column for bad YAML", async () => {
    const file = await write("broken.yaml", "subscriptions:\n  - id: a\n    type: claude-pro\n  bad: [\n");
    const error = await loadError(file);
    expect(error.line).toBe(4);
    expect(error.message.startsWith(`${file}: line 4, column `)).toBe(true);
  });

  it("rejects duplicate YAML keys instead of keeping the last", async () => {
    const file = await write("dupe.yaml", "server:\n  port: 1\n  port: 2\n");
    const error = await loadError(file);
    expect(error.line).toBe(3);
    expect(error.expected).toMatch(/unique/);
  });

  it("rejects unknown YAML tags instead of guessing a type", async () => {
    const file = await write("tag.yaml", "dedupeRetentionHours: !hours 48\n");
    const error = await loadError(file);
    expect(error.line).toBe(1);
    expect(error.expected).toMatch(/tag/i);
  });
});

describe("applyEnv", () => {
  const base = () => parseConfig(validRaw(), "<inline>", { homeDir });

  it("reads AUTHPOOL_TOKENS and never echoes a bad one", () => {
    const next = applyEnv(base(), { AUTHPOOL_TOKENS: "tok-aaaaaaaaaaaaaaaa, client:tok-bbbbbbbbbbbbbbbb" });
    // A bare token keeps meaning admin, as before roles existed.
    expect(next.server.authTokens).toEqual([
      { role: "admin", token: "tok-aaaaaaaaaaaaaaaa", from: "env" },
      { role: "client", token: "tok-bbbbbbbbbbbbbbbb", from: "env" },
    ]);
    let error: unknown;
    try {
      applyEnv(base(), { AUTHPOOL_TOKENS: "tok-aaaaaaaaaaaaaaaa,short-secret" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("AUTHPOOL_TOKENS");
    expect((error as ConfigError).message).not.toContain("short-secret");
  });

  it("overrides host, port and store without touching the original", () => {
    const config = base();
    const next = applyEnv(config, {
      AUTHPOOL_HOST: "0.0.0.0",
      AUTHPOOL_PORT: "6000",
      AUTHPOOL_STORE: "sqlite:///var/lib/authpool.sqlite",
    });
    expect(next.server).toEqual({ host: "0.0.0.0", port: 6000, authTokens: [] });
    expect(next.store.uri).toBe("sqlite:///var/lib/authpool.sqlite");
    expect(next.subscriptions).toBe(config.subscriptions);
    expect(config.server).toStrictEqual(configDefaults.server);
    expect(config.store).toStrictEqual(configDefaults.store);
    expect(Object.isFrozen(next.server)).toBe(true);
  });

  it("accepts port 0 and ignores unset or empty variables", () => {
    expect(applyEnv(base(), { AUTHPOOL_PORT: "0" }).server.port).toBe(0);
    const same = applyEnv(base(), { AUTHPOOL_HOST: "", AUTHPOOL_PORT: "" });
    expect(same.server).toStrictEqual(configDefaults.server);
  });

  it.each(["70000", "abc", "80.5", " 80", "1e3", "-1", "0x50"])("rejects AUTHPOOL_PORT=%j", (value) => {
    const error = parseError(() => applyEnv(base(), { AUTHPOOL_PORT: value }));
    expect(error.file).toBe("env");
    expect(error.path).toBe("AUTHPOOL_PORT");
    expect(error.message).toBe(`env: AUTHPOOL_PORT: expected an integer port 0-65535, got ${JSON.stringify(value)}`);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
