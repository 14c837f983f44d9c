import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { type AuthPoolClient, Priority, createAuthPoolClient } from "../client/index.js";

/**
 * A drop-in for the headless API's in-process auth pool: the same client
 * interface (`isEnabled`, `allocateAccount`, `reportUsage`, `sendHeartbeat`,
 * `deallocateSession`, created by `initializeAuthPool`), served by this
 * pool over the network. Like the interface it replaces, no method throws:
 * a pool that is down, slow or refusing answers `type: "fallback"` with a
 * reason that says so, within `timeoutMs`. See docs/headless-api.md.
 */

/** HeadlessPriority: the old interface's priorities. */
export type HeadlessPriority = "high" | "normal" | "low";

export interface AllocateAccountRequest {
  /** The gateway's session id; absent: the pool makes one (returned as sessionId). */
  sessionId?: string;
  estimatedTokens?: number;
  priority?: HeadlessPriority;
  /** Beyond the old interface: a model hint ("opus", "sonnet", a model id). */
  model?: string;
}

export interface AllocateAccountResult {
  type: "subscription" | "fallback";
  subscriptionId?: string;
  configDir?: string;
  reason: string;
  /** Beyond the old interface: the session id the pool booked (the one given, or a new one). */
  sessionId?: string;
  /**
   * Beyond the old interface: set when the pool moved this session off the
   * subscription it was on (a limit, a drain, a rebalance). The gateway
   * should start the next run with the new configDir; a resumed Claude
   * conversation must be started afresh there (its transcript lives in the
   * old config dir).
   */
  rotatedFrom?: string;
}

export interface ReportUsageRequest {
  subscriptionId: string;
  /** API-price estimate in USD (Claude's total_cost_usd). */
  cost: number;
  /** Total tokens of the run. */
  tokens: number;
  sessionId: string;
  /**
   * Beyond the old interface: an idempotency key. A call is retried by this
   * module under one key; a gateway that retries a call itself passes the
   * same key each time so the pool counts it once.
   */
  requestId?: string;
}

export interface HeartbeatRequest {
  /** The session id allocateAccount booked. */
  clientId: string;
  subscriptionId: string;
  status: "active" | "idle";
  sessionCost?: number;
  sessionTokens?: number;
}

/** HeadlessAuthPoolClient is the old in-process client's interface. */
export interface HeadlessAuthPoolClient {
  isEnabled(): boolean;
  allocateAccount(request: AllocateAccountRequest): Promise<AllocateAccountResult>;
  reportUsage(request: ReportUsageRequest): Promise<void>;
  sendHeartbeat(request: HeartbeatRequest): Promise<void>;
  deallocateSession(clientId: string): Promise<void>;
  /**
   * Beyond the old interface: report a run by what `claude -p` printed
   * (stdout of any output format). The pool then reads the cost per model,
   * the tokens, limits with their reset times, throttles and upstream
   * utilization from it, which a cost and a token total cannot carry.
   */
  reportClaudeOutput(sessionId: string, stdout: string, requestId?: string): Promise<void>;
}

export interface InitializeAuthPoolOptions {
  /** The pool's URL; absent: AUTHPOOL_URL. Neither: the pool is off (null). */
  url?: string;
  /** Bearer token; absent: AUTHPOOL_TOKEN. */
  token?: string;
  /** PEM to trust for an https:// pool; absent: the file named by AUTHPOOL_CA. */
  ca?: string | Buffer;
  /** Bound on each call, retries included, in ms (default 2000; AUTHPOOL_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Where the variables are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Told of failures the interface swallows (default: console.warn). */
  onError?: (operation: string, error: unknown) => void;
}

export interface AuthPoolHandle {
  client: HeadlessAuthPoolClient;
  /** The generated client underneath, for what the old interface cannot say. */
  pool: AuthPoolClient;
  url: string;
}

const DEFAULT_TIMEOUT_MS = 2000;

/**
 * initializeAuthPool connects to the pool named by the options or the
 * environment, or returns null when none is named (the gateway then runs
 * without a pool, as it did when the old one was disabled). The argument
 * may be a URL string, for a one-line switch.
 */
export function initializeAuthPool(options: InitializeAuthPoolOptions | string = {}): AuthPoolHandle | null {
  const o: InitializeAuthPoolOptions = typeof options === "string" ? { url: options } : options;
  const env = o.env ?? process.env;
  const url = nonEmpty(o.url) ?? nonEmpty(env.AUTHPOOL_URL);
  if (url === undefined) return null;
  const token = nonEmpty(o.token) ?? nonEmpty(env.AUTHPOOL_TOKEN);
  const caFile = nonEmpty(env.AUTHPOOL_CA);
  const ca = o.ca ?? (caFile !== undefined ? readFileSync(caFile) : undefined);
  const timeoutMs = o.timeoutMs ?? (Number(env.AUTHPOOL_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS);
  const pool = createAuthPoolClient(url, {
    timeoutMs,
    ...(token !== undefined ? { token } : {}),
    ...(ca !== undefined ? { ca } : {}),
  });
  const onError = o.onError ?? ((operation, error) => console.warn(`auth pool: ${operation}: ${describe(error)}`));
  return { client: headlessClient(pool, { timeoutMs, onError }), pool, url };
}

/** headlessClient adapts a generated client to the old interface. */
export function headlessClient(
  pool: AuthPoolClient,
  options: { timeoutMs: number; onError: (operation: string, error: unknown) => void },
): HeadlessAuthPoolClient {
  const { timeoutMs, onError } = options;
  /** call runs one RPC, retried on a transient failure within one overall deadline. */
  const call = async <T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const deadline = AbortSignal.timeout(timeoutMs);
    for (let attempt = 0; ; attempt++) {
      try {
        return await run(deadline);
      } catch (error) {
        if (deadline.aborted || attempt >= 2 || !transient(error)) throw error;
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  };
  const report = async (operation: string, run: (signal: AbortSignal) => Promise<unknown>) => {
    try {
      await call(run);
    } catch (error) {
      // A report on a session the pool does not hold (released, or never
      // allocated: a fallback run) has nothing to be counted against.
      if (ConnectError.from(error).code !== Code.NotFound) onError(operation, error);
    }
  };
  return {
    isEnabled: () => true,

    async allocateAccount(request) {
      const sessionId = request.sessionId ?? "";
      try {
        const reply = await call((signal) =>
          pool.allocate(
            {
              sessionId,
              estimatedTokens: BigInt(Math.max(0, Math.round(request.estimatedTokens ?? 0))),
              priority: PRIORITY[request.priority ?? "normal"] ?? Priority.NORMAL,
              model: request.model ?? "",
            },
            { signal },
          ),
        );
        if (reply.outcome.case === "subscription") {
          const grant = reply.outcome.value;
          return {
            type: "subscription",
            subscriptionId: grant.subscriptionId,
            configDir: grant.configDir,
            reason: grant.resumed
              ? `resumed on ${grant.subscriptionId}`
              : grant.rotatedFrom !== ""
                ? `moved from ${grant.rotatedFrom} to ${grant.subscriptionId}`
                : `allocated ${grant.subscriptionId} (health ${Math.round(grant.healthScore)})`,
            sessionId: reply.sessionId,
            ...(grant.rotatedFrom !== "" ? { rotatedFrom: grant.rotatedFrom } : {}),
          };
        }
        const reason = reply.outcome.case === "fallback" ? reply.outcome.value.reason : "no subscription";
        return { type: "fallback", reason, sessionId: reply.sessionId };
      } catch (error) {
        onError("allocateAccount", error);
        return { type: "fallback", reason: `auth pool unavailable: ${describe(error)}`, sessionId };
      }
    },

    reportUsage(request) {
      const requestId = request.requestId ?? randomUUID();
      const tokens = Math.max(0, Math.round(request.tokens));
      return report("reportUsage", (signal) =>
        pool.reportUsage(
          {
            sessionId: request.sessionId,
            requestId,
            // A total alone cannot be split into input and output: it is booked as output.
            source: { case: "usage", value: { costUsd: Math.max(0, request.cost), outputTokens: BigInt(tokens) } },
          },
          { signal },
        ),
      );
    },

    reportClaudeOutput(sessionId, stdout, requestId = randomUUID()) {
      return report("reportClaudeOutput", (signal) =>
        pool.reportUsage({ sessionId, requestId, source: { case: "claudeOutput", value: stdout } }, { signal }),
      );
    },

    sendHeartbeat(request) {
      // Idle needs no call: the pool marks a session idle once it goes quiet.
      if (request.status !== "active") return Promise.resolve();
      // An empty report marks the session active without counting anything;
      // the session totals the old heartbeat carried were already reported.
      return report("sendHeartbeat", (signal) =>
        pool.reportUsage(
          { sessionId: request.clientId, requestId: randomUUID(), source: { case: "usage", value: {} } },
          { signal },
        ),
      );
    },

    deallocateSession(clientId) {
      return report("deallocateSession", (signal) => pool.release({ sessionId: clientId }, { signal }));
    },
  };
}

const PRIORITY: Record<string, Priority> = { high: Priority.HIGH, normal: Priority.NORMAL, low: Priority.LOW };

/** transient: worth one more try (the call may not have reached the pool, or the leader is changing). */
function transient(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return code === Code.Unavailable || code === Code.Unknown || code === Code.Aborted;
}

function describe(error: unknown): string {
  const e = ConnectError.from(error);
  if (e.code === Code.DeadlineExceeded || e.code === Code.Canceled) return "no answer in time";
  return `${Code[e.code]}: ${e.rawMessage}`;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === "" ? undefined : s.trim();
}
