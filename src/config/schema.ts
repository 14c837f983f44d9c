/**
 * The config file as written: every key optional that has a default, alias
 * keys from the original design accepted next to the canonical ones, and
 * every object strict so a typo is an error instead of a silently ignored
 * key. Defaults, aliases and cross-field rules are applied in resolve.ts;
 * this schema checks only what one value can say about itself.
 *
 * Error texts are phrases completing "expected ...": the loader appends what
 * was actually found.
 */
import { z } from "zod";
import { CLIENT_NAME_PATTERN, TOKEN_ENTRY_PHRASE, parseTokenEntry } from "./auth-tokens.js";
import { configDirProblem } from "./paths.js";

/** SUBSCRIPTION_ID_PATTERN is what a subscription id must match. */
export const SUBSCRIPTION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * configAliases maps each accepted alias (the original design's key names)
 * to its canonical key. `[]` stands for any subscription index. Giving both
 * with different values is an error.
 */
export const configAliases: Readonly<Record<string, string>> = Object.freeze({
  "subscriptions[].weeklyBudget": "subscriptions[].weeklyBudgetUsd",
  "subscriptions[].maxClientsPerSub": "subscriptions[].maxSessions",
  "subscriptions[].fiveHourBudget": "subscriptions[].fiveHourBudgetUsd",
  "subscriptions[].expectedWindowCost": "subscriptions[].fiveHourBudgetUsd",
  maxClientsPerSubscription: "maxSessionsPerSubscription",
  fallbackWhenExhausted: "fallback.enabled",
  fallbackProvider: "fallback.provider",
  "rebalancing.maxClientsToMovePerCycle": "rebalancing.maxMovesPerCycle",
  "notifications.webhookUrl": "notifications.webhook.url",
  "notifications.webhookSecret": "notifications.webhook.secret",
});

const FRACTION = "a number in (0, 1]";
const POSITIVE = "a number > 0";
const NON_NEGATIVE = "a number >= 0";
const COUNT = "an integer >= 1";
const TEXT = "a non-empty string";
const ID = "an id of 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit";
const PORT = "an integer port 0-65535";
const HTTP_URL = "an http:// or https:// URL";
const TIME_ZONE = 'an IANA time zone such as "UTC" or "Europe/Berlin"';

const fraction = () => z.number({ error: FRACTION }).gt(0, { error: FRACTION }).lte(1, { error: FRACTION });
const FRACTION_OR_AUTO = `${FRACTION}, or "auto"`;
const fractionOrAuto = () =>
  z.union([z.literal("auto"), fraction()], {
    error: FRACTION_OR_AUTO,
  });
const positive = () => z.number({ error: POSITIVE }).gt(0, { error: POSITIVE });
const nonNegative = () => z.number({ error: NON_NEGATIVE }).min(0, { error: NON_NEGATIVE });
const count = () => z.int({ error: COUNT }).min(1, { error: COUNT });
const text = () => z.string({ error: TEXT }).min(1, { error: TEXT });
const flag = () => z.boolean({ error: "true or false" });
const port = () => z.int({ error: PORT }).min(0, { error: PORT }).max(65535, { error: PORT });
const httpUrl = () => z.string({ error: HTTP_URL }).refine(isHttpUrl, { error: HTTP_URL });
const TOKEN = `a list of bearer tokens, each ${TOKEN_ENTRY_PHRASE}`;
// Each entry's own problem (unknown role, too short) is the message; the
// value is never echoed (describeFound hides anything under a token key).
const authTokens = () =>
  z.array(
    z.string({ error: TOKEN }).superRefine((value, ctx) => {
      const entry = parseTokenEntry(value);
      if (!entry.ok) ctx.addIssue({ code: "custom", message: `${entry.expected} (this entry has ${entry.found})` });
    }),
    { error: TOKEN },
  );
const FILE_PATH = "a file path without control characters";
const filePath = () =>
  z
    .string({ error: FILE_PATH })
    .min(1, { error: FILE_PATH })
    .regex(/^[^\u0000-\u001f\u007f]+$/, { error: FILE_PATH });
const timeZone = () => z.string({ error: TIME_ZONE }).refine(isTimeZone, { error: TIME_ZONE });
// Below 1 KiB not even a status request fits; above 2^32-1 Connect refuses to start.
const REQUEST_BYTES = "an integer from 1024 to 4294967295 (bytes)";
const requestBytes = () =>
  z.int({ error: REQUEST_BYTES }).min(1024, { error: REQUEST_BYTES }).max(4_294_967_295, { error: REQUEST_BYTES });

// More than Claude Code's own 5-minute margin (or a `claude` process would refresh first), at most half a token's 8 hours.
const REFRESH_BEFORE = "an integer from 6 to 240 (minutes)";
const refreshBeforeMinutes = () =>
  z.int({ error: REFRESH_BEFORE }).min(6, { error: REFRESH_BEFORE }).max(240, { error: REFRESH_BEFORE });
const TIMEOUT_SECONDS = "an integer from 1 to 30 (seconds)";
/** deliveryKeys: how an outbound endpoint (the webhook, Slack) is retried. */
const deliveryKeys = () => ({
  timeoutMs: count().optional(),
  maxAttempts: count().optional(),
  retryPauseSeconds: positive().optional(),
});
const UTC_HOUR = "an integer hour from 0 to 23 (UTC)";
const utcHour = () => z.int({ error: UTC_HOUR }).min(0, { error: UTC_HOUR }).max(23, { error: UTC_HOUR });

// A YAML section with every line commented out parses as null; treat that as
// "not given" rather than making users delete the heading.
const section = <Shape extends z.core.$ZodLooseShape>(shape: Shape) =>
  z.strictObject(shape, { error: "an object" }).nullish();

const configDir = () =>
  z.string({ error: "a directory path" }).superRefine((value, ctx) => {
    const problem = configDirProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });

const subscriptionSchema = z.strictObject(
  {
    id: z.string({ error: ID }).regex(SUBSCRIPTION_ID_PATTERN, { error: ID }),
    email: z.string({ error: "a string" }).optional(),
    type: z.enum(["claude-pro", "claude-max", "api"], {
      error: 'one of "claude-pro", "claude-max", "api"',
    }),
    configDir: configDir(),
    weeklyBudgetUsd: positive().optional(),
    weeklyBudget: positive().optional(),
    fiveHourBudgetUsd: positive().optional(),
    fiveHourBudget: positive().optional(),
    expectedWindowCost: positive().optional(),
    maxSessions: count().optional(),
    maxClientsPerSub: count().optional(),
    weeklyBudgetThreshold: fractionOrAuto().optional(),
    upstreamUsage: flag().optional(),
    transcripts: flag().optional(),
    manageCredentials: flag().optional(),
  },
  { error: "a subscription object" },
);

const NOTIFICATION_TYPES = [
  "usage_threshold",
  "failover",
  "rotation",
  "limit_reached",
  "status_changed",
  "rebalance_completed",
  "session",
  "client_limited",
] as const;

const ruleSchema = z.strictObject(
  {
    type: z.enum(NOTIFICATION_TYPES, {
      error: `one of ${NOTIFICATION_TYPES.map((t) => `"${t}"`).join(", ")}`,
    }),
    threshold: fraction().optional(),
    channels: z
      .array(z.enum(["webhook", "log", "slack"], { error: '"webhook", "log" or "slack"' }), {
        error: "a list of channels",
      })
      .min(1, { error: "a non-empty list of channels" })
      .optional(),
    enabled: flag().optional(),
  },
  { error: "a notification rule object" },
);

const CLIENT_NAME = "a client name: letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit";
const MODEL_LIST = 'a list of model families or id prefixes, e.g. ["opus"]';
const modelList = () => z.array(text(), { error: MODEL_LIST }).min(1, { error: MODEL_LIST });
const PRIORITY = 'one of "low", "normal", "high"';
const clientSchema = z.strictObject(
  {
    weeklyUsd: positive().optional(),
    fiveHourUsd: positive().optional(),
    maxSessions: count().optional(),
    share: fraction().optional(),
    weight: positive().optional(),
    allowModels: modelList().optional(),
    denyModels: modelList().optional(),
    maxPriority: z.enum(["low", "normal", "high"], { error: PRIORITY }).optional(),
    fallback: flag().optional(),
  },
  { error: "an object of client limits" },
);

/** rawConfigSchema validates a config file's content before defaults and aliases. */
export const rawConfigSchema = z.strictObject(
  {
    subscriptions: z
      .array(subscriptionSchema, { error: "a list of subscriptions" })
      .min(1, { error: "at least one subscription" }),
    defaults: section({ weeklyBudgetUsd: positive().optional() }),
    maxSessionsPerSubscription: count().optional(),
    maxClientsPerSubscription: count().optional(),
    weeklyBudgetThreshold: fractionOrAuto().optional(),
    lowPriorityThreshold: fractionOrAuto().optional(),
    fallback: section({ enabled: flag().optional(), provider: text().optional() }),
    fallbackWhenExhausted: flag().optional(),
    fallbackProvider: text().optional(),
    sessions: section({
      activeMinutes: count().optional(),
      staleMinutes: count().optional(),
      sweepIntervalSeconds: count().optional(),
    }),
    cooldown: section({
      defaultMinutes: count().optional(),
      timeZone: timeZone().optional(),
      throttleSeconds: count().optional(),
      rampMinutes: nonNegative().optional(),
    }),
    health: section({
      weights: section({
        weekly: nonNegative().optional(),
        fiveHour: nonNegative().optional(),
        sessions: nonNegative().optional(),
        burnRate: nonNegative().optional(),
        idle: nonNegative().optional(),
      }),
    }),
    dedupeRetentionHours: positive().optional(),
    pacing: flag().optional(),
    limits: section({ maxClaudeOutputBytes: count().optional(), maxRequestBytes: requestBytes().optional() }),
    rebalancing: section({
      enabled: flag().optional(),
      intervalSeconds: count().optional(),
      costGapThreshold: nonNegative().optional(),
      maxMovesPerCycle: count().optional(),
      maxClientsToMovePerCycle: count().optional(),
    }),
    notifications: section({
      rules: z.array(ruleSchema, { error: "a list of rules" }).nullish(),
      webhook: section({
        url: httpUrl().optional(),
        secret: text().optional(),
        secretFile: filePath().optional(),
        ...deliveryKeys(),
      }),
      slack: section({
        // The whole URL is the credential: errors never show it (describeFound).
        url: httpUrl().optional(),
        urlFile: filePath().optional(),
        ...deliveryKeys(),
        coolOffMinutes: positive().optional(),
        digest: section({ enabled: flag().optional(), hour: utcHour().optional() }),
      }),
      webhookUrl: httpUrl().optional(),
      webhookSecret: text().optional(),
    }),
    events: section({ retentionDays: count().optional() }),
    upstream: section({
      enabled: flag().optional(),
      intervalSeconds: count().optional(),
      endpoint: httpUrl().optional(),
      baseUrl: httpUrl().optional(),
      timeoutMs: count().optional(),
      staleAfterSeconds: count().optional(),
      fiveHourCap: fraction().optional(),
      modelCap: fraction().optional(),
    }),
    transcripts: section({
      enabled: flag().optional(),
      intervalSeconds: count().optional(),
      graceMinutes: nonNegative().optional(),
    }),
    snapshot: section({ everyRecords: count().optional(), everySeconds: count().optional() }),
    credentials: section({
      manage: flag().optional(),
      tokenEndpoint: httpUrl().optional(),
      clientId: text().optional(),
      refreshBeforeMinutes: refreshBeforeMinutes().optional(),
      checkIntervalSeconds: count().optional(),
      // The refresh lock is held for one request: keep it far under Claude Code's 60 s staleness bound.
      timeoutSeconds: z
        .int({ error: TIMEOUT_SECONDS })
        .min(1, { error: TIMEOUT_SECONDS })
        .max(30, { error: TIMEOUT_SECONDS })
        .optional(),
      backoffMinSeconds: count().optional(),
      backoffMaxSeconds: count().optional(),
    }),
    server: section({
      host: text().optional(),
      port: port().optional(),
      authTokensFile: filePath().optional(),
      // Discouraged (a secret in the main config); accepted for compatibility with a warning at start.
      authTokens: authTokens().optional(),
      tls: z
        .strictObject({ certFile: filePath(), keyFile: filePath() }, { error: "an object with certFile and keyFile" })
        .nullish(),
    }),
    store: section({ uri: text().optional() }),
    clients: z
      .record(z.string().regex(CLIENT_NAME_PATTERN, { error: CLIENT_NAME }), clientSchema, {
        error: "a map of client names to their limits",
      })
      .nullish(),
    queue: section({
      maxWaiting: count().optional(),
      maxWaitingPerClient: count().optional(),
      maxWaitSeconds: count().optional(),
    }),
    cluster: section({
      leaseTtlSeconds: positive().optional(),
      instanceId: z
        .string({ error: "1-128 printable characters" })
        .regex(/^[\x21-\x7e]{1,128}$/, { error: "1-128 printable characters without spaces" })
        .optional(),
      advertiseUrl: httpUrl().optional(),
      followPollMs: count().optional(),
      caFile: filePath().optional(),
    }),
  },
  { error: "an object of config keys" },
);

/** RawConfig is a config file's content once rawConfigSchema accepted it. */
export type RawConfig = z.infer<typeof rawConfigSchema>;

/** isPort says whether a number is a usable TCP port (0 asks the OS for one). */
export function isPort(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 65535;
}

/** isHttpUrl says whether a value is an http:// or https:// URL with a host. */
export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
  } catch {
    return false;
  }
}

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}
