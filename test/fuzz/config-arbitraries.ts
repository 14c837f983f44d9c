/**
 * Invalid pool configs for the config fuzz and the ReloadConfig fuzz: a
 * valid config with one to three mutations, each known to make it invalid,
 * with the key path(s) the refusal must name.
 */
import fc from "fast-check";
import { configDefaults } from "../../src/config/index.js";
import { formatPath } from "../../src/config/errors.js";

type Raw = Record<string, unknown>;
type Path = (string | number)[];

/** InvalidConfig is a mutated config and the paths at least one of which the error must name. */
export interface InvalidConfig {
  raw: unknown;
  paths: string[];
  notes: string[];
}

/**
 * richConfig is a valid config that sets (nearly) every key, so every key can
 * be broken. Where a value is only there to be valid it is the default, from
 * configDefaults (deep-copied: the mutations write into it); the values that
 * differ are on purpose (a numeric threshold, so a low-priority one can be
 * set; a token, a client, rules and a webhook to break).
 */
export function richConfig(): Raw {
  const d = structuredClone(configDefaults);
  return {
    subscriptions: [
      {
        id: "pro-1",
        email: "pro1@example.com",
        type: "claude-pro",
        configDir: "~/.claude-pro-1",
        weeklyBudgetUsd: 456,
        fiveHourBudgetUsd: 40,
        maxSessions: 10,
        upstreamUsage: false,
        transcripts: false,
        manageCredentials: false,
      },
      { id: "max-1", type: "claude-max", configDir: "/srv/claude/max-1", weeklyBudgetUsd: 2280 },
    ],
    defaults: { weeklyBudgetUsd: 456 },
    maxSessionsPerSubscription: d.maxSessionsPerSubscription,
    weeklyBudgetThreshold: 0.85,
    lowPriorityThreshold: 0.7,
    fallback: d.fallback,
    sessions: d.sessions,
    cooldown: d.cooldown,
    health: d.health,
    dedupeRetentionHours: d.dedupeRetentionHours,
    pacing: d.pacing,
    limits: d.limits,
    rebalancing: d.rebalancing,
    notifications: {
      rules: [
        { type: "usage_threshold", threshold: 0.8, channels: ["log"] },
        { type: "failover", channels: ["webhook", "log"], enabled: true },
      ],
      webhook: { url: "https://hooks.example.com/authpool", secret: "webhook-secret-value", ...d.webhook },
    },
    events: d.events,
    clients: {
      "ci-bot": {
        weeklyUsd: 50,
        maxSessions: 4,
        share: 0.5,
        weight: 2,
        denyModels: ["opus"],
        maxPriority: "normal",
        fallback: false,
      },
    },
    queue: { maxWaiting: 100, maxWaitingPerClient: 20, maxWaitSeconds: 60 },
    upstream: d.upstream,
    transcripts: d.transcripts,
    snapshot: d.snapshot,
    credentials: d.credentials,
    server: { ...d.server, authTokens: ["0123456789abcdef-token"] },
    store: d.store,
  };
}

/** formatPath: the config error path format (`a.b[1].c`, odd keys as `["k"]`), from the loader itself. */
export { formatPath };

// Invalid values by the kind of value a key wants. Every one is wrong for
// every key of its kind, also after a JSON round trip (NaN becomes null).
const notNumber = [null, "5", true, [], {}, "", "NaN"];
const BAD: Record<string, unknown[]> = {
  fraction: [0, -0.1, 1.0001, 2, Number.NaN, Number.POSITIVE_INFINITY, -1e-300, ...notNumber],
  positive: [0, -0, -1, -1e-9, Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, ...notNumber],
  nonNegative: [-1, -0.0001, Number.NaN, Number.NEGATIVE_INFINITY, ...notNumber],
  count: [0, -1, 1.5, 2 ** 53, 1e300, Number.NaN, ...notNumber],
  requestBytes: [0, 1, 1023, 1024.5, 4_294_967_296, -4_194_304, 1e300, "4194304", ...notNumber],
  port: [-1, 65_536, 1.5, 1e9, "50051", null, true, []],
  text: ["", 5, null, [], {}, true],
  flag: ["true", 1, 0, null, "yes", [], {}],
  url: [
    "",
    "ftp://example.com/x",
    "http://",
    "not a url",
    "javascript:alert(1)",
    "//host/path",
    5,
    null,
    "mailto:a@b.c",
  ],
  timeZone: ["Mars/Olympus", "", "UTC+25", "Europe/Berlinn", 5, null, "\u0000"],
  tokens: [
    ["short"],
    "0123456789abcdef-token",
    [5],
    ["has spaces in the token value"],
    [""],
    [null],
    {},
    ["tab\there-0123456789"],
  ],
  subscriptionType: ["claude", "Claude-Pro", "", 1, null, "api "],
  ruleType: ["usage", "USAGE_THRESHOLD", "", 5, null],
  channels: [[], ["email"], "log", [5], null, ["log", "sms"]],
  id: ["", "-leading", "a b", "a".repeat(65), "ü", 5, null, "a/b", "a\u0000", ".hidden"],
  configDir: [
    "relative/path",
    "../x",
    "/a/../b",
    "~user/x",
    "file:///x",
    "C:\\claude",
    "/a\u0000b",
    "/a\nb",
    "/tab\there",
    "",
    "http://x/y",
    5,
    null,
    [],
  ],
  email: [5, null, [], true],
  section: [5, "x", [], true, "null"],
  list: [5, "x", {}, true],
};

/** LEAVES lists every key of the rich config with the kind of value it wants. */
const LEAVES: [Path, string][] = [
  [["subscriptions", 0, "id"], "id"],
  [["subscriptions", 1, "id"], "id"],
  [["subscriptions", 0, "email"], "email"],
  [["subscriptions", 0, "type"], "subscriptionType"],
  [["subscriptions", 1, "type"], "subscriptionType"],
  [["subscriptions", 0, "configDir"], "configDir"],
  [["subscriptions", 1, "configDir"], "configDir"],
  [["subscriptions", 0, "weeklyBudgetUsd"], "positive"],
  [["subscriptions", 0, "fiveHourBudgetUsd"], "positive"],
  [["subscriptions", 0, "maxSessions"], "count"],
  [["subscriptions", 1, "weeklyBudgetThreshold"], "fraction"],
  [["subscriptions", 0, "upstreamUsage"], "flag"],
  [["subscriptions", 0, "transcripts"], "flag"],
  [["defaults", "weeklyBudgetUsd"], "positive"],
  [["maxSessionsPerSubscription"], "count"],
  [["weeklyBudgetThreshold"], "fraction"],
  [["lowPriorityThreshold"], "fraction"],
  [["fallback", "enabled"], "flag"],
  [["fallback", "provider"], "text"],
  [["sessions", "activeMinutes"], "count"],
  [["sessions", "staleMinutes"], "count"],
  [["sessions", "sweepIntervalSeconds"], "count"],
  [["cooldown", "defaultMinutes"], "count"],
  [["cooldown", "timeZone"], "timeZone"],
  [["health", "weights", "weekly"], "nonNegative"],
  [["health", "weights", "idle"], "nonNegative"],
  [["dedupeRetentionHours"], "positive"],
  [["pacing"], "flag"],
  [["limits", "maxClaudeOutputBytes"], "count"],
  [["limits", "maxRequestBytes"], "requestBytes"],
  [["rebalancing", "enabled"], "flag"],
  [["rebalancing", "intervalSeconds"], "count"],
  [["rebalancing", "costGapThreshold"], "nonNegative"],
  [["rebalancing", "maxMovesPerCycle"], "count"],
  [["notifications", "rules", 0, "type"], "ruleType"],
  [["notifications", "rules", 0, "threshold"], "fraction"],
  [["notifications", "rules", 0, "channels"], "channels"],
  [["notifications", "rules", 1, "enabled"], "flag"],
  [["notifications", "webhook", "url"], "url"],
  [["notifications", "webhook", "secret"], "text"],
  [["notifications", "webhook", "timeoutMs"], "count"],
  [["notifications", "webhook", "maxAttempts"], "count"],
  [["events", "retentionDays"], "count"],
  [["upstream", "enabled"], "flag"],
  [["upstream", "intervalSeconds"], "count"],
  [["upstream", "endpoint"], "url"],
  [["upstream", "timeoutMs"], "count"],
  [["upstream", "staleAfterSeconds"], "count"],
  [["upstream", "fiveHourCap"], "fraction"],
  [["upstream", "modelCap"], "fraction"],
  [["transcripts", "enabled"], "flag"],
  [["transcripts", "intervalSeconds"], "count"],
  [["transcripts", "graceMinutes"], "nonNegative"],
  [["snapshot", "everyRecords"], "count"],
  [["snapshot", "everySeconds"], "count"],
  [["subscriptions", 0, "manageCredentials"], "flag"],
  [["credentials", "manage"], "flag"],
  [["credentials", "tokenEndpoint"], "url"],
  [["credentials", "clientId"], "text"],
  [["credentials", "refreshBeforeMinutes"], "count"],
  [["credentials", "checkIntervalSeconds"], "count"],
  [["credentials", "timeoutSeconds"], "count"],
  [["credentials"], "section"],
  [["server", "host"], "text"],
  [["server", "port"], "port"],
  [["server", "authTokens"], "tokens"],
  [["store", "uri"], "text"],
  [["defaults"], "section"],
  [["fallback"], "section"],
  [["sessions"], "section"],
  [["health"], "section"],
  [["health", "weights"], "section"],
  [["limits"], "section"],
  [["notifications"], "section"],
  [["notifications", "webhook"], "section"],
  [["upstream"], "section"],
  [["server"], "section"],
  [["notifications", "rules"], "list"],
];

/** Objects the config has, for unknown keys: where they are and the keys known there. */
const OBJECTS: [Path, string[]][] = [
  [[], ["subscriptions", "defaults", "server", "limits", "store", "maxClientsPerSubscription"]],
  [
    ["subscriptions", 0],
    ["id", "type", "configDir", "weeklyBudget", "maxClientsPerSub", "expectedWindowCost"],
  ],
  [
    ["subscriptions", 1],
    ["id", "type", "configDir"],
  ],
  [["sessions"], ["activeMinutes", "staleMinutes", "sweepIntervalSeconds"]],
  [["limits"], ["maxClaudeOutputBytes", "maxRequestBytes"]],
  [
    ["health", "weights"],
    ["weekly", "fiveHour", "sessions", "burnRate", "idle"],
  ],
  [["notifications"], ["rules", "webhook", "webhookUrl", "webhookSecret"]],
  [
    ["notifications", "webhook"],
    ["url", "secret", "timeoutMs", "maxAttempts"],
  ],
  [
    ["notifications", "rules", 0],
    ["type", "threshold", "channels", "enabled"],
  ],
  [["server"], ["host", "port", "authTokens"]],
  [["upstream"], ["enabled", "endpoint", "baseUrl"]],
];

const KNOWN_KEYS = new Set([
  ...OBJECTS.flatMap(([, keys]) => keys),
  ...LEAVES.map(([p]) => p[p.length - 1]).filter((k): k is string => typeof k === "string"),
  "rebalancing",
  "cooldown",
  "events",
  "transcripts",
  "snapshot",
  "fallback",
  "weeklyBudgetThreshold",
  "lowPriorityThreshold",
  "maxSessionsPerSubscription",
  "dedupeRetentionHours",
  "fallbackWhenExhausted",
  "fallbackProvider",
  "email",
  "upstreamUsage",
  "weeklyBudgetUsd",
  "fiveHourBudgetUsd",
  "fiveHourBudget",
  "maxSessions",
  "webhook",
  "rules",
  "weights",
  "uri",
]);

const unknownKeyArb = fc
  .oneof(
    fc.constantFrom(
      "maxSesions",
      "weeklybudget",
      "Port",
      "timezone",
      "subscription",
      "limit",
      "enable",
      "__proto__",
      "constructor",
      "toString",
      "",
      " ",
      "a.b",
      "x\u0000y",
      "ключ",
      "😀",
    ),
    fc.string({ minLength: 1, maxLength: 12 }),
  )
  .filter((k) => !KNOWN_KEYS.has(k));

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** setAt sets a value at a path, creating objects on the way; keys are own properties even for "__proto__". */
function setAt(root: Raw, path: Path, value: unknown): void {
  let current: Record<string | number, unknown> = root;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    let next = current[key];
    if (typeof next !== "object" || next === null) {
      next = typeof path[i + 1] === "number" ? [] : {};
      Object.defineProperty(current, key, { value: next, enumerable: true, writable: true, configurable: true });
    }
    current = next as Record<string | number, unknown>;
  }
  Object.defineProperty(current, path[path.length - 1]!, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function deleteAt(root: Raw, path: Path): void {
  let current: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (typeof current !== "object" || current === null) return;
    current = (current as Record<string | number, unknown>)[key];
  }
  if (typeof current === "object" && current !== null)
    delete (current as Record<string | number, unknown>)[path[path.length - 1]!];
}

type Mutation = (raw: Raw) => { paths: string[]; note: string; replace?: unknown };

/** One mutation, known to make any config that had the rich config's shape invalid. */
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  // A wrong type or an out-of-range value for one key.
  {
    weight: 8,
    arbitrary: fc.tuple(fc.constantFrom(...LEAVES), fc.nat()).map(
      ([[path, kind], i]): Mutation =>
        (raw) => {
          const values = BAD[kind]!;
          const value = values[i % values.length];
          setAt(raw, path, clone(value));
          return { paths: [formatPath(path)], note: `${formatPath(path)} = ${String(JSON.stringify(value))}` };
        },
    ),
  },
  // An unknown key (a typo, junk, "__proto__").
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom(...OBJECTS), unknownKeyArb, fc.jsonValue({ maxDepth: 1 })).map(
      ([[path, known], key, value]): Mutation =>
        (raw) => {
          setAt(raw, [...path, key], value ?? 1);
          // A typo close to a known key gets a did-you-mean; either way the unknown key's path is named.
          void known;
          return {
            paths: [formatPath([...path, key])],
            note: `unknown key ${JSON.stringify(key)} at ${formatPath(path) || "the top"}`,
          };
        },
    ),
  },
  // Rules that span keys.
  {
    weight: 3,
    arbitrary: fc.constantFrom<Mutation>(
      (raw) => {
        const first = (raw.subscriptions as (Raw | null)[] | undefined)?.[0];
        setAt(raw, ["subscriptions", 1, "id"], typeof first?.id === "string" ? first.id : "pro-1");
        return { paths: ["subscriptions[1].id"], note: "duplicate id" };
      },
      (raw) => {
        setAt(raw, ["subscriptions", 1, "configDir"], "/home/pooluser/.claude-pro-1/");
        setAt(raw, ["subscriptions", 0, "configDir"], "~/.claude-pro-1");
        return { paths: ["subscriptions[1].configDir"], note: "duplicate config dir after ~ expansion" };
      },
      (raw) => {
        setAt(raw, ["subscriptions", 0, "weeklyBudgetUsd"], 456);
        setAt(raw, ["subscriptions", 0, "weeklyBudget"], 999);
        return { paths: ["subscriptions[0].weeklyBudget"], note: "alias with a different value" };
      },
      (raw) => {
        setAt(raw, ["maxSessionsPerSubscription"], 15);
        setAt(raw, ["maxClientsPerSubscription"], 3);
        return { paths: ["maxClientsPerSubscription"], note: "alias with a different value" };
      },
      (raw) => {
        setAt(raw, ["fallbackWhenExhausted"], false);
        setAt(raw, ["fallback", "enabled"], true);
        return { paths: ["fallbackWhenExhausted"], note: "alias with a different value" };
      },
      (raw) => {
        setAt(raw, ["weeklyBudgetThreshold"], 0.5);
        setAt(raw, ["lowPriorityThreshold"], 0.9);
        return { paths: ["lowPriorityThreshold"], note: "lowPriorityThreshold above weeklyBudgetThreshold" };
      },
      (raw) => {
        setAt(raw, ["sessions", "activeMinutes"], 90);
        setAt(raw, ["sessions", "staleMinutes"], 60);
        return { paths: ["sessions.staleMinutes"], note: "stale before active" };
      },
      (raw) => {
        setAt(raw, ["health", "weights"], { weekly: 0, fiveHour: 0, sessions: 0, burnRate: 0, idle: 0 });
        return { paths: ["health.weights"], note: "all weights 0" };
      },
      (raw) => {
        deleteAt(raw, ["notifications", "webhook", "url"]);
        return { paths: ["notifications.webhook.url", "notifications.rules[1].channels"], note: "webhook without url" };
      },
      (raw) => {
        deleteAt(raw, ["notifications", "rules", 0, "threshold"]);
        return { paths: ["notifications.rules[0].threshold"], note: "usage_threshold without threshold" };
      },
      (raw) => {
        setAt(raw, ["upstream", "endpoint"], "https://api.anthropic.com/api/oauth/usage");
        setAt(raw, ["upstream", "baseUrl"], "https://api.anthropic.com");
        return { paths: ["upstream.baseUrl"], note: "endpoint and baseUrl" };
      },
      (raw) => {
        deleteAt(raw, ["defaults"]);
        deleteAt(raw, ["subscriptions", 0, "weeklyBudgetUsd"]);
        deleteAt(raw, ["subscriptions", 0, "weeklyBudget"]);
        return { paths: ["subscriptions[0].weeklyBudgetUsd"], note: "no weekly budget" };
      },
      (raw) => {
        deleteAt(raw, ["subscriptions", 1, "type"]);
        return { paths: ["subscriptions[1].type"], note: "missing type" };
      },
      (raw) => {
        deleteAt(raw, ["subscriptions", 0, "configDir"]);
        return { paths: ["subscriptions[0].configDir"], note: "missing configDir" };
      },
      (raw) => {
        setAt(raw, ["subscriptions"], []);
        return { paths: ["subscriptions"], note: "no subscriptions" };
      },
      (raw) => {
        deleteAt(raw, ["subscriptions"]);
        return { paths: ["subscriptions"], note: "subscriptions missing" };
      },
      (raw) => {
        setAt(raw, ["subscriptions", 0], "pro-1");
        return { paths: ["subscriptions[0]"], note: "subscription not an object" };
      },
    ),
  },
  // Not an object at all.
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(null, [], "subscriptions: []", 5, true, [richConfig()]).map(
      (replace): Mutation =>
        () => ({ paths: [""], note: `document is ${JSON.stringify(replace)?.slice(0, 30)}`, replace }),
    ),
  },
);

/** invalidConfigArb: the base config with one to three mutations. */
export function invalidConfigArb(base: () => Raw): fc.Arbitrary<InvalidConfig> {
  return fc.array(mutationArb, { minLength: 1, maxLength: 3 }).map((mutations) => {
    let raw: unknown = base();
    const paths: string[] = [];
    const notes: string[] = [];
    for (const mutate of mutations) {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        // A document that is not an object has no keys left to break.
        break;
      }
      const result = mutate(raw as Raw);
      paths.push(...result.paths);
      notes.push(result.note);
      if ("replace" in result) raw = result.replace;
    }
    return { raw, paths, notes };
  });
}
