/**
 * Turns a schema-valid raw config into a PoolConfig: folds aliases into
 * canonical keys, applies defaults, expands config dirs and checks the rules
 * that span several keys. Problems are returned, not thrown, so the loader
 * can report them all with the file name.
 */
import { bearerToken, parseTokenEntry, readTokenFile } from "./auth-tokens.js";
import { FIVE_HOUR_CAP_UNPOLLED, configDefaults, deepFreeze } from "./defaults.js";
import { describeFound, formatPath, type ConfigIssue, type ConfigPath } from "./errors.js";
import { expandConfigDir } from "./paths.js";
import { pickOne } from "./pick-one.js";
import { resolveNotifications } from "./resolve-notifications.js";
import type { RawConfig } from "./schema.js";
import type { ClientSettings } from "../domain/settings.js";
import { readTlsCredentials } from "./tls-files.js";
import type { BearerToken, PoolConfig, SubscriptionConfig, TlsConfig } from "./types.js";

/** ResolveResult is either a usable config or the problems that prevent one. */
export type ResolveResult =
  | { readonly ok: true; readonly config: PoolConfig }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/**
 * resolveConfig applies aliases, defaults and cross-key rules to a raw
 * config; `./` config dirs are taken from baseDir (the config file's
 * directory).
 */
export function resolveConfig(raw: RawConfig, source: string, homeDir: string, baseDir: string): ResolveResult {
  const issues: ConfigIssue[] = [];
  const subscriptions = resolveSubscriptions(raw, homeDir, baseDir, issues);

  const weeklyBudgetThreshold = raw.weeklyBudgetThreshold ?? configDefaults.weeklyBudgetThreshold;
  const polled = raw.upstream?.enabled ?? configDefaults.upstream.enabled;
  // "auto" stays "auto": each account's low threshold is a share of its own
  // weekly one (domain/view.ts), which a subscription may set for itself.
  const lowPriorityThreshold = raw.lowPriorityThreshold ?? "auto";
  if (
    typeof weeklyBudgetThreshold === "number" &&
    typeof lowPriorityThreshold === "number" &&
    lowPriorityThreshold > weeklyBudgetThreshold
  ) {
    issues.push({
      path: "lowPriorityThreshold",
      expected: `expected a number <= weeklyBudgetThreshold (${weeklyBudgetThreshold}), got ${lowPriorityThreshold}`,
    });
  }

  const fallback = {
    enabled:
      pickOne(
        issues,
        [["fallback", "enabled"], raw.fallback?.enabled],
        [["fallbackWhenExhausted"], raw.fallbackWhenExhausted],
      ) ?? configDefaults.fallback.enabled,
    provider:
      pickOne(
        issues,
        [["fallback", "provider"], raw.fallback?.provider],
        [["fallbackProvider"], raw.fallbackProvider],
      ) ?? configDefaults.fallback.provider,
  };

  const sessions = {
    activeMinutes: raw.sessions?.activeMinutes ?? configDefaults.sessions.activeMinutes,
    staleMinutes: raw.sessions?.staleMinutes ?? configDefaults.sessions.staleMinutes,
    sweepIntervalSeconds: raw.sessions?.sweepIntervalSeconds ?? configDefaults.sessions.sweepIntervalSeconds,
  };
  // A session cannot go stale before it stops counting as active; blame the
  // key the user actually wrote.
  if (sessions.activeMinutes > sessions.staleMinutes) {
    issues.push(
      raw.sessions?.staleMinutes !== undefined
        ? {
            path: "sessions.staleMinutes",
            expected: `expected a number >= sessions.activeMinutes (${sessions.activeMinutes}), got ${sessions.staleMinutes}`,
          }
        : {
            path: "sessions.activeMinutes",
            expected: `expected a number <= sessions.staleMinutes (${sessions.staleMinutes}), got ${sessions.activeMinutes}`,
          },
    );
  }

  const rawWeights = raw.health?.weights;
  const defaultWeights = configDefaults.health.weights;
  const weights = {
    weekly: rawWeights?.weekly ?? defaultWeights.weekly,
    fiveHour: rawWeights?.fiveHour ?? defaultWeights.fiveHour,
    sessions: rawWeights?.sessions ?? defaultWeights.sessions,
    burnRate: rawWeights?.burnRate ?? defaultWeights.burnRate,
    idle: rawWeights?.idle ?? defaultWeights.idle,
  };
  if (Object.values(weights).every((w) => w === 0)) {
    issues.push({
      path: "health.weights",
      expected: "expected at least one weight > 0, got all weights 0",
    });
  }

  const rebalancing = {
    enabled: raw.rebalancing?.enabled ?? configDefaults.rebalancing.enabled,
    intervalSeconds: raw.rebalancing?.intervalSeconds ?? configDefaults.rebalancing.intervalSeconds,
    costGapThreshold: raw.rebalancing?.costGapThreshold ?? configDefaults.rebalancing.costGapThreshold,
    maxMovesPerCycle:
      pickOne(
        issues,
        [["rebalancing", "maxMovesPerCycle"], raw.rebalancing?.maxMovesPerCycle],
        [["rebalancing", "maxClientsToMovePerCycle"], raw.rebalancing?.maxClientsToMovePerCycle],
      ) ?? configDefaults.rebalancing.maxMovesPerCycle,
  };

  const notifications = resolveNotifications(raw, homeDir, issues);

  const config: PoolConfig = {
    source,
    subscriptions,
    weeklyBudgetThreshold,
    lowPriorityThreshold,
    fallback,
    sessions,
    cooldown: {
      defaultMinutes: raw.cooldown?.defaultMinutes ?? configDefaults.cooldown.defaultMinutes,
      timeZone: raw.cooldown?.timeZone ?? configDefaults.cooldown.timeZone,
      throttleSeconds: raw.cooldown?.throttleSeconds ?? configDefaults.cooldown.throttleSeconds,
      rampMinutes: raw.cooldown?.rampMinutes ?? configDefaults.cooldown.rampMinutes,
    },
    health: { weights },
    dedupeRetentionHours: raw.dedupeRetentionHours ?? configDefaults.dedupeRetentionHours,
    pacing: raw.pacing ?? configDefaults.pacing,
    limits: {
      maxClaudeOutputBytes: raw.limits?.maxClaudeOutputBytes ?? configDefaults.limits.maxClaudeOutputBytes,
      maxRequestBytes: raw.limits?.maxRequestBytes ?? configDefaults.limits.maxRequestBytes,
    },
    rebalancing,
    notifications,
    events: { retentionDays: raw.events?.retentionDays ?? configDefaults.events.retentionDays },
    clients: resolveClients(raw.clients ?? {}, issues),
    queue: {
      maxWaiting: raw.queue?.maxWaiting ?? configDefaults.queue.maxWaiting,
      maxWaitingPerClient: raw.queue?.maxWaitingPerClient ?? configDefaults.queue.maxWaitingPerClient,
      maxWaitSeconds: raw.queue?.maxWaitSeconds ?? configDefaults.queue.maxWaitSeconds,
    },
    upstream: {
      enabled: polled,
      intervalSeconds: raw.upstream?.intervalSeconds ?? configDefaults.upstream.intervalSeconds,
      endpoint: upstreamEndpoint(raw, issues),
      timeoutMs: raw.upstream?.timeoutMs ?? configDefaults.upstream.timeoutMs,
      staleAfterSeconds: raw.upstream?.staleAfterSeconds ?? configDefaults.upstream.staleAfterSeconds,
      fiveHourCap: fiveHourCapFor(raw, polled),
      modelCap: raw.upstream?.modelCap ?? configDefaults.upstream.modelCap,
    },
    transcripts: {
      enabled: raw.transcripts?.enabled ?? configDefaults.transcripts.enabled,
      intervalSeconds: raw.transcripts?.intervalSeconds ?? configDefaults.transcripts.intervalSeconds,
      graceMinutes: raw.transcripts?.graceMinutes ?? configDefaults.transcripts.graceMinutes,
    },
    snapshot: {
      everyRecords: raw.snapshot?.everyRecords ?? configDefaults.snapshot.everyRecords,
      everySeconds: raw.snapshot?.everySeconds ?? configDefaults.snapshot.everySeconds,
    },
    credentials: resolveCredentials(raw, issues),
    server: resolveServer(raw, homeDir, issues),
    store: { uri: raw.store?.uri ?? configDefaults.store.uri },
    cluster: {
      leaseTtlSeconds: raw.cluster?.leaseTtlSeconds ?? configDefaults.cluster.leaseTtlSeconds,
      followPollMs: raw.cluster?.followPollMs ?? configDefaults.cluster.followPollMs,
      ...(raw.cluster?.advertiseUrl !== undefined ? { advertiseUrl: raw.cluster.advertiseUrl } : {}),
      ...(raw.cluster?.instanceId !== undefined ? { instanceId: raw.cluster.instanceId } : {}),
      ...(raw.cluster?.caFile !== undefined ? { caFile: expandConfigDir(raw.cluster.caFile, homeDir) } : {}),
    },
  };
  return issues.length > 0 ? { ok: false, issues } : { ok: true, config: deepFreeze(config) };
}

/**
 * resolveServer reads the token file (tokens in it and in server.authTokens
 * both count) and checks the TLS files, so a missing or malformed file
 * stops start-up and reloads with its key path rather than surfacing at the
 * first call. Relative file paths are taken from the working directory,
 * like store.uri; `~/` is expanded.
 */
function resolveServer(raw: RawConfig, homeDir: string, issues: ConfigIssue[]): PoolConfig["server"] {
  const inline: BearerToken[] = (raw.server?.authTokens ?? []).flatMap((text) => {
    const entry = parseTokenEntry(text);
    return entry.ok ? [bearerToken(entry, "config")] : [];
  });
  let fromFile: readonly BearerToken[] = [];
  let authTokensFile: string | undefined;
  if (raw.server?.authTokensFile !== undefined) {
    authTokensFile = expandConfigDir(raw.server.authTokensFile, homeDir);
    const read = readTokenFile(authTokensFile);
    if (read.ok) fromFile = read.tokens;
    else for (const problem of read.problems) issues.push({ path: "server.authTokensFile", expected: problem });
  }
  let tls: TlsConfig | undefined;
  if (raw.server?.tls != null) {
    tls = {
      certFile: expandConfigDir(raw.server.tls.certFile, homeDir),
      keyFile: expandConfigDir(raw.server.tls.keyFile, homeDir),
    };
    const read = readTlsCredentials(tls);
    if (!read.ok) issues.push(...read.issues);
  }
  return {
    host: raw.server?.host ?? configDefaults.server.host,
    port: raw.server?.port ?? configDefaults.server.port,
    authTokens: [...fromFile, ...inline],
    ...(authTokensFile !== undefined ? { authTokensFile } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
}

function resolveSubscriptions(
  raw: RawConfig,
  homeDir: string,
  baseDir: string,
  issues: ConfigIssue[],
): SubscriptionConfig[] {
  const defaultMaxSessions =
    pickOne(
      issues,
      [["maxSessionsPerSubscription"], raw.maxSessionsPerSubscription],
      [["maxClientsPerSubscription"], raw.maxClientsPerSubscription],
    ) ?? configDefaults.maxSessionsPerSubscription;
  const defaultWeekly = raw.defaults?.weeklyBudgetUsd;
  const firstWithId = new Map<string, number>();
  const firstWithDir = new Map<string, number>();

  return raw.subscriptions.map((sub, index): SubscriptionConfig => {
    const at = (key: string): ConfigPath => ["subscriptions", index, key];

    const weekly = pickOne(
      issues,
      [at("weeklyBudgetUsd"), sub.weeklyBudgetUsd],
      [at("weeklyBudget"), sub.weeklyBudget],
    );
    const weeklyBudgetUsd = weekly ?? defaultWeekly;
    if (weeklyBudgetUsd === undefined) {
      issues.push({
        path: formatPath(at("weeklyBudgetUsd")),
        expected: "expected a number > 0 (required unless defaults.weeklyBudgetUsd is set), but it is missing",
      });
    }
    const fiveHour = pickOne(
      issues,
      [at("fiveHourBudgetUsd"), sub.fiveHourBudgetUsd],
      [at("fiveHourBudget"), sub.fiveHourBudget],
      [at("expectedWindowCost"), sub.expectedWindowCost],
    );
    const maxSessions = pickOne(
      issues,
      [at("maxSessions"), sub.maxSessions],
      [at("maxClientsPerSub"), sub.maxClientsPerSub],
    );

    const previousId = firstWithId.get(sub.id);
    if (previousId === undefined) firstWithId.set(sub.id, index);
    else {
      issues.push({
        path: formatPath(at("id")),
        expected: `expected a unique id, got ${describeFound([], sub.id)} which subscriptions[${previousId}].id already uses`,
      });
    }

    // Two entries on one config dir would be one account booked twice.
    const configDir = expandConfigDir(sub.configDir, homeDir, baseDir);
    const previousDir = firstWithDir.get(configDir);
    if (previousDir === undefined) firstWithDir.set(configDir, index);
    else {
      issues.push({
        path: formatPath(at("configDir")),
        expected: `expected a config dir no other subscription uses, got ${describeFound([], configDir)} which subscriptions[${previousDir}].configDir already uses`,
      });
    }

    // NaN only when the budget is missing, which is already reported above.
    const budget = weeklyBudgetUsd ?? Number.NaN;
    const polled = sub.upstreamUsage ?? raw.upstream?.enabled ?? configDefaults.upstream.enabled;
    return {
      id: sub.id,
      email: sub.email ?? "",
      type: sub.type,
      configDir,
      weeklyBudgetUsd: budget,
      fiveHourBudgetUsd: fiveHour ?? budget / configDefaults.fiveHourBudgetDivisor,
      maxSessions: maxSessions ?? defaultMaxSessions,
      ...(sub.weeklyBudgetThreshold !== undefined ? { weeklyBudgetThreshold: sub.weeklyBudgetThreshold } : {}),
      fiveHourCap: fiveHourCapFor(raw, polled),
      upstreamUsage: polled,
      transcripts: sub.transcripts ?? raw.transcripts?.enabled ?? configDefaults.transcripts.enabled,
      manageCredentials: manageCredentials(raw, sub, at("manageCredentials"), issues),
    };
  });
}

/** fiveHourCapFor: the configured 5-hour cap, else by whether the account (or pool) is polled: an unpolled reading can be hours old. */
function fiveHourCapFor(raw: RawConfig, polled: boolean): number {
  return raw.upstream?.fiveHourCap ?? (polled ? configDefaults.upstream.fiveHourCap : FIVE_HOUR_CAP_UNPOLLED);
}

/** resolveCredentials: the managed-credentials settings, backoff bounds in order. */
function resolveCredentials(raw: RawConfig, issues: ConfigIssue[]): PoolConfig["credentials"] {
  const given = raw.credentials;
  const defaults = configDefaults.credentials;
  const credentials = {
    manage: given?.manage ?? defaults.manage,
    tokenEndpoint: given?.tokenEndpoint ?? defaults.tokenEndpoint,
    clientId: given?.clientId ?? defaults.clientId,
    refreshBeforeMinutes: given?.refreshBeforeMinutes ?? defaults.refreshBeforeMinutes,
    checkIntervalSeconds: given?.checkIntervalSeconds ?? defaults.checkIntervalSeconds,
    timeoutSeconds: given?.timeoutSeconds ?? defaults.timeoutSeconds,
    backoffMinSeconds: given?.backoffMinSeconds ?? defaults.backoffMinSeconds,
    backoffMaxSeconds: given?.backoffMaxSeconds ?? defaults.backoffMaxSeconds,
  };
  if (credentials.backoffMinSeconds > credentials.backoffMaxSeconds) {
    issues.push(
      given?.backoffMaxSeconds !== undefined
        ? {
            path: "credentials.backoffMaxSeconds",
            expected: `expected a number >= credentials.backoffMinSeconds (${credentials.backoffMinSeconds}), got ${credentials.backoffMaxSeconds}`,
          }
        : {
            path: "credentials.backoffMinSeconds",
            expected: `expected a number <= credentials.backoffMaxSeconds (${credentials.backoffMaxSeconds}), got ${credentials.backoffMinSeconds}`,
          },
    );
  }
  return credentials;
}

/** manageCredentials: the subscription's own flag, else the pool's; an API-key subscription has no OAuth login to manage. */
function manageCredentials(
  raw: RawConfig,
  sub: RawConfig["subscriptions"][number],
  path: ConfigPath,
  issues: ConfigIssue[],
): boolean {
  if (sub.type === "api") {
    if (sub.manageCredentials === true) {
      issues.push({
        path: formatPath(path),
        expected: 'expected false or nothing for an "api" subscription (it has no OAuth login), got true',
      });
    }
    return false;
  }
  return sub.manageCredentials ?? raw.credentials?.manage ?? configDefaults.credentials.manage;
}

/**
 * upstreamEndpoint: `endpoint` is the full URL; `baseUrl` names only the
 * host (as for the Anthropic API) and gets the usage path appended.
 */
function upstreamEndpoint(raw: RawConfig, issues: ConfigIssue[]): string {
  const { endpoint, baseUrl } = raw.upstream ?? {};
  if (endpoint !== undefined && baseUrl !== undefined) {
    issues.push({ path: "upstream.baseUrl", expected: "expected upstream.endpoint or upstream.baseUrl, not both" });
  }
  if (endpoint !== undefined) return endpoint;
  if (baseUrl !== undefined) return `${baseUrl.replace(/\/+$/, "")}${OAUTH_USAGE_PATH}`;
  return configDefaults.upstream.endpoint;
}

/** OAUTH_USAGE_PATH is where the usage endpoint lives under the API's base URL. */
const OAUTH_USAGE_PATH = "/api/oauth/usage";

/**
 * resolveClients applies each client's defaults (weight 1, falls back) and
 * refuses a model both allowed and denied, which would leave the reader
 * guessing which wins.
 */
function resolveClients(raw: NonNullable<RawConfig["clients"]>, issues: ConfigIssue[]): PoolConfig["clients"] {
  const clients: Record<string, ClientSettings> = {};
  for (const [name, c] of Object.entries(raw)) {
    const both = (c.allowModels ?? []).filter((m) => (c.denyModels ?? []).includes(m));
    if (both.length > 0) {
      issues.push({
        path: formatPath(["clients", name, "denyModels"]),
        expected: `expected models not also in allowModels, got ${both.map((m) => JSON.stringify(m)).join(", ")} in both`,
      });
    }
    clients[name] = {
      weight: c.weight ?? configDefaults.client.weight,
      fallback: c.fallback ?? configDefaults.client.fallback,
      ...(c.weeklyUsd !== undefined ? { weeklyUsd: c.weeklyUsd } : {}),
      ...(c.fiveHourUsd !== undefined ? { fiveHourUsd: c.fiveHourUsd } : {}),
      ...(c.maxSessions !== undefined ? { maxSessions: c.maxSessions } : {}),
      ...(c.share !== undefined ? { share: c.share } : {}),
      ...(c.allowModels !== undefined ? { allowModels: c.allowModels } : {}),
      ...(c.denyModels !== undefined ? { denyModels: c.denyModels } : {}),
      ...(c.maxPriority !== undefined ? { maxPriority: c.maxPriority } : {}),
    };
  }
  return clients;
}
