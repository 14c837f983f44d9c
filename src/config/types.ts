/**
 * The resolved pool configuration: every default applied, every alias folded
 * into its canonical key, every path absolute. Code outside src/config reads
 * only these types, never the raw file shape.
 */

import type { ClientSettings } from "../domain/settings.js";

/** SubscriptionType says how a subscription is billed upstream. */
export type SubscriptionType = "claude-pro" | "claude-max" | "api";

/** SubscriptionConfig is one pooled subscription (one CLAUDE_CONFIG_DIR). */
export interface SubscriptionConfig {
  readonly id: string;
  /** "" when the file gave none. */
  readonly email: string;
  readonly type: SubscriptionType;
  /** Absolute and normalised; a leading `~` is already expanded. */
  readonly configDir: string;
  readonly weeklyBudgetUsd: number;
  /**
   * Expected cost of one full 5-hour window. Defaults to weeklyBudgetUsd / 10:
   * a local guess used only until upstream utilization readings are known
   * (the original design hard-coded $25).
   */
  readonly fiveHourBudgetUsd: number;
  readonly maxSessions: number;
  /**
   * This account's weekly threshold when it differs from the pool's
   * weeklyBudgetThreshold: "auto" for an account its owner also uses
   * outside the pool (the reserve learned from that use is kept back).
   */
  readonly weeklyBudgetThreshold?: number | "auto";
  /** 5-hour share at which it takes no new sessions: upstream.fiveHourCap, or by whether this account is polled. */
  readonly fiveHourCap: number;
  /** Poll the OAuth usage endpoint with this config dir's token (upstream.enabled unless set). */
  readonly upstreamUsage: boolean;
  /** Read this config dir's transcripts for use outside the pool (transcripts.enabled unless set). */
  readonly transcripts: boolean;
  /**
   * The pool is the refresher of this config dir's OAuth login
   * (credentials.manage unless set; never for "api" subscriptions).
   */
  readonly manageCredentials: boolean;
}

/** NotificationType is the event a notification rule fires on. */
export type NotificationType =
  | "usage_threshold"
  | "failover"
  | "rotation"
  | "limit_reached"
  | "status_changed"
  | "rebalance_completed"
  | "session"
  | "client_limited";

/** NotificationChannel is where a notification is delivered. */
export type NotificationChannel = "webhook" | "log" | "slack";

/** NotificationRule routes one kind of event to channels. */
export interface NotificationRule {
  readonly type: NotificationType;
  /** 0-1 fraction of the weekly budget; present (required) for usage_threshold. */
  readonly threshold?: number;
  readonly channels: readonly NotificationChannel[];
  readonly enabled: boolean;
}

/** DeliverySettings: how an outbound endpoint is retried. */
export interface DeliverySettings {
  /** Per attempt. */
  readonly timeoutMs: number;
  /** Attempts in a row (with backoff) before the pause. */
  readonly maxAttempts: number;
  /** The pause after maxAttempts failed attempts, before the same event is tried again. */
  readonly retryPauseSeconds: number;
}

/** WebhookConfig is the single outbound webhook endpoint. */
export interface WebhookConfig extends DeliverySettings {
  readonly url: string;
  /** Shared secret used to sign deliveries (from secret, secretFile or AUTHPOOL_WEBHOOK_SECRET); absent means unsigned. */
  readonly secret?: string;
}

/** SlackConfig is the Slack incoming webhook that gets alerts a person can act on, and the daily digest. */
export interface SlackConfig extends DeliverySettings {
  /**
   * The incoming-webhook URL (a credential: never logged or shown), from
   * url, urlFile or AUTHPOOL_SLACK_URL. Absent only between reading the
   * file and applying the environment: applyEnv refuses a config still
   * without one.
   */
  readonly url?: string;
  /** Repeats of an alert without a reset time are held back this long. */
  readonly coolOffMinutes: number;
  /** One summary a day at `hour`:00 UTC. */
  readonly digest: { readonly enabled: boolean; readonly hour: number };
}

/** HealthWeights are the relative weights of the health score's parts. */
export interface HealthWeights {
  readonly weekly: number;
  readonly fiveHour: number;
  readonly sessions: number;
  readonly burnRate: number;
  readonly idle: number;
}

/** PoolConfig is the whole resolved configuration (deeply frozen). */
export interface PoolConfig {
  /** The file the config came from, or "<inline>". */
  readonly source: string;
  readonly subscriptions: readonly SubscriptionConfig[];
  /**
   * (0, 1]: share of the weekly budget after which a subscription stops
   * taking new work; "auto": 1 less a reserve learned from each account's
   * use outside the pool (src/domain/reserve.ts).
   */
  readonly weeklyBudgetThreshold: number | "auto";
  /** (0, 1], <= weeklyBudgetThreshold: share after which only high-priority work is placed; "auto": 0.9 of it. */
  readonly lowPriorityThreshold: number | "auto";
  readonly fallback: { readonly enabled: boolean; readonly provider: string };
  readonly sessions: {
    readonly activeMinutes: number;
    readonly staleMinutes: number;
    readonly sweepIntervalSeconds: number;
  };
  readonly cooldown: {
    readonly defaultMinutes: number;
    readonly timeZone: string;
    /** Seconds new placements pause after a request throttle that gave no retry-after. */
    readonly throttleSeconds: number;
    /** Minutes over which a subscription back from a limit is admitted up to maxSessions (0: at once). */
    readonly rampMinutes: number;
  };
  readonly health: { readonly weights: HealthWeights };
  readonly dedupeRetentionHours: number;
  /**
   * Rank allocations by pace where upstream gave a window's reset time:
   * room left against time left until the reset. Off: by health alone.
   */
  readonly pacing: boolean;
  readonly limits: {
    readonly maxClaudeOutputBytes: number;
    /** Largest request message read, in bytes; larger ones get RESOURCE_EXHAUSTED. Read at start. */
    readonly maxRequestBytes: number;
  };
  readonly rebalancing: {
    readonly enabled: boolean;
    readonly intervalSeconds: number;
    readonly costGapThreshold: number;
    readonly maxMovesPerCycle: number;
  };
  readonly notifications: {
    readonly rules: readonly NotificationRule[];
    readonly webhook?: WebhookConfig;
    readonly slack?: SlackConfig;
  };
  readonly events: { readonly retentionDays: number };
  /** Limits per client, by name; a client not listed has none. */
  readonly clients: Readonly<Record<string, ClientSettings>>;
  readonly queue: {
    readonly maxWaiting: number;
    readonly maxWaitingPerClient: number;
    readonly maxWaitSeconds: number;
  };
  /**
   * Polling Claude's OAuth usage endpoint with each subscription's own
   * (read-only) token: the utilization Claude itself shows, which replaces
   * the local dollar estimates in health and eligibility.
   */
  readonly upstream: {
    readonly enabled: boolean;
    readonly intervalSeconds: number;
    readonly endpoint: string;
    readonly timeoutMs: number;
    readonly staleAfterSeconds: number;
    readonly fiveHourCap: number;
    readonly modelCap: number;
  };
  /** Transcript reading: usage done outside the pool, and usage-limit rows. */
  readonly transcripts: {
    readonly enabled: boolean;
    readonly intervalSeconds: number;
    readonly graceMinutes: number;
  };
  readonly snapshot: { readonly everyRecords: number; readonly everySeconds: number };
  /**
   * Managed credentials: the pool renews each managed subscription's OAuth
   * login in `<configDir>/.credentials.json` well before it expires, so no
   * `claude` process has to (and none races another for the single-use
   * refresh token).
   */
  readonly credentials: {
    /** The default of subscriptions[].manageCredentials. */
    readonly manage: boolean;
    readonly tokenEndpoint: string;
    readonly clientId: string;
    /** Renew when less than this is left; Claude Code itself renews at 5 minutes. */
    readonly refreshBeforeMinutes: number;
    /** How often each file is looked at (a login fixed by hand is noticed within it). */
    readonly checkIntervalSeconds: number;
    /** Per token request. */
    readonly timeoutSeconds: number;
    /** Retries after a failed renewal wait between these bounds (doubling, jittered). */
    readonly backoffMinSeconds: number;
    readonly backoffMaxSeconds: number;
  };
  readonly server: {
    readonly host: string;
    readonly port: number;
    /**
     * Bearer tokens accepted on AuthPoolService calls and GET /metrics, with
     * their roles; empty: no authentication (fine on 127.0.0.1, not on a
     * shared network).
     */
    readonly authTokens: readonly BearerToken[];
    /** The token file (absolute) the tokens were read from, when one was given. */
    readonly authTokensFile?: string;
    /** Serve TLS (HTTP/2 and HTTP/1.1 by ALPN) with these files; absent: cleartext. */
    readonly tls?: TlsConfig;
  };
  readonly store: { readonly uri: string };
  /** Several instances on one store: the lease, and how standbys follow and forward. */
  readonly cluster: {
    /** The store's lease lasts this long unless renewed (renewed every third of it); a takeover happens within it. */
    readonly leaseTtlSeconds: number;
    /**
     * This instance's id in the lease; absent: host name and port (a random
     * id with port 0). A restart under the same id takes the lease back at
     * once instead of waiting out the TTL of its killed predecessor.
     */
    readonly instanceId?: string;
    /** Where other instances reach this one to forward writes; absent: derived from server.host and the port. */
    readonly advertiseUrl?: string;
    /** A standby's poll of the journal (PostgreSQL also announces appends at once). */
    readonly followPollMs: number;
    /** A PEM CA to trust when forwarding to an https leader (default: server.tls.certFile). */
    readonly caFile?: string;
  };
}

/**
 * BearerRole is what a bearer token may do: `client` allocates, reports and
 * releases; `reader` reads status, events and metrics; `admin` may do
 * everything, including rebalance, pause, drain and reload.
 */
export type BearerRole = "client" | "reader" | "admin";

/** BearerToken is one accepted token, its role, and the client its calls are booked to. */
export interface BearerToken {
  readonly role: BearerRole;
  readonly token: string;
  /** The client's name (`role:name:token`); absent: calls name their client, else "default". */
  readonly client?: string;
  /** Where it came from: a token file, the environment, or (discouraged) the config file itself. */
  readonly from: "file" | "env" | "config";
}

/** TlsConfig names the server's PEM files, as absolute paths. */
export interface TlsConfig {
  /** The certificate chain, leaf first. */
  readonly certFile: string;
  readonly keyFile: string;
}

/** LoadOptions tune how a config is resolved. */
export interface LoadOptions {
  /** Directory `~` expands to; defaults to os.homedir(). */
  readonly homeDir?: string;
  /**
   * Directory `./` config dirs are relative to; defaults to the directory of
   * the config's source file (the working directory for INLINE_SOURCE).
   */
  readonly baseDir?: string;
}
