#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AllocateResponseSchema,
  EventSchema,
  EventType,
  FigureBasis,
  RebalanceResponseSchema,
  GetPoolStatusResponseSchema,
  Priority,
  ReleaseResponseSchema,
  ReportUsageResponseSchema,
  SetPausedResponseSchema,
  type UsageFigure,
} from "../../gen/authpool/v1/auth_pool_pb.js";
import { createAuthPoolClient } from "../client/index.js";
import { ConfigError, applyEnv, defaultConfigPath, loadConfigFile } from "../config/index.js";
import { createJsonLogger } from "../runtime/logger.js";
import { startAuthPoolServer } from "../server/start-server.js";
import { StoreError, redact } from "../store/index.js";

/**
 * The `authpool` command: `serve` runs the pool; the others are an
 * operator's shortcuts for the RPCs (buf curl works too).
 */
const usage = `usage: authpool <command> [options]

  serve [--config FILE]             run the pool (env AUTHPOOL_CONFIG, AUTHPOOL_STORE,
                                    AUTHPOOL_HOST, AUTHPOOL_PORT override)
  status [--sessions]               show every subscription (and sessions)
  allocate [--session ID] [--model M] [--priority low|normal|high]
  report --session ID (--file F | -) [--request-id K]
                                    report claude -p JSON output (from a file or stdin)
  release --session ID
  pause ID | resume ID              stop / restart placing sessions on a subscription
  rebalance [--dry-run]             move idle sessions off the most loaded subscriptions now
  events [--after N] [--type T ...] [--subscription ID ...] [--tail]
                                    follow pool events (T: rotation, failover, usage_threshold,
                                    limit_reached, status_changed, rebalance_completed, session)

  --url URL                         the pool (default http://127.0.0.1:50051 or AUTHPOOL_URL)
  --token T                         bearer token when the pool requires one (or AUTHPOOL_TOKEN)
  --json                            print the reply as JSON (default for all but status)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      url: { type: "string" },
      token: { type: "string" },
      session: { type: "string" },
      model: { type: "string" },
      priority: { type: "string" },
      file: { type: "string" },
      "request-id": { type: "string" },
      sessions: { type: "boolean" },
      "dry-run": { type: "boolean" },
      after: { type: "string" },
      type: { type: "string", multiple: true },
      subscription: { type: "string", multiple: true },
      tail: { type: "boolean" },
      json: { type: "boolean" },
    },
  });
  if (command === "serve") return serve(values.config);
  const url = values.url ?? process.env.AUTHPOOL_URL ?? "http://127.0.0.1:50051";
  const token = values.token ?? process.env.AUTHPOOL_TOKEN;
  const client = createAuthPoolClient(url, token !== undefined ? { token } : {});
  switch (command) {
    case "status": {
      const res = await client.getPoolStatus({ includeSessions: values.sessions ?? false });
      if (values.json) return print(toJsonString(GetPoolStatusResponseSchema, res, { prettySpaces: 2 }));
      for (const s of res.subscriptions) {
        const window = s.fiveHourWindow;
        process.stdout.write(
          `${s.id.padEnd(16)} ${statusName(s.status).padEnd(11)} health ${s.healthScore.toFixed(1).padStart(5)}` +
            `  weekly ${s.weeklyPercentUsed.toFixed(1).padStart(5)}% ${figureTag(s.weekly)} ($${s.weeklyUsedUsd.toFixed(2)}/$${s.weeklyBudgetUsd})` +
            `  5h ${(window?.percentUsed ?? 0).toFixed(1).padStart(5)}% ${figureTag(s.fiveHour)}  sessions ${s.sessionCount}/${s.maxSessions}` +
            `${s.external !== undefined && s.external.weeklyUsd > 0 ? `  outside the pool $${s.external.weeklyUsd.toFixed(2)}` : ""}` +
            `${s.cooldown ? `  cooldown until ${new Date(Number(s.cooldown.until?.seconds ?? 0n) * 1000).toISOString()}` : ""}` +
            `${s.warnings.length > 0 ? `  ! ${s.warnings.join("; ")}` : ""}\n`,
        );
      }
      for (const s of res.sessions) process.stdout.write(`  ${s.sessionId} on ${s.subscriptionId} $${s.costUsd.toFixed(4)}\n`);
      return 0;
    }
    case "allocate": {
      const priority = { low: Priority.LOW, normal: Priority.NORMAL, high: Priority.HIGH }[values.priority ?? "normal"];
      if (priority === undefined) return fail("--priority: expected low, normal or high");
      const res = await client.allocate({ sessionId: values.session ?? "", model: values.model ?? "", priority });
      return print(toJsonString(AllocateResponseSchema, res, { prettySpaces: 2 }));
    }
    case "report": {
      if (values.session === undefined) return fail("report: --session is required");
      const file = values.file ?? positionals[0];
      if (file === undefined) return fail("report: --file FILE (or - for stdin) is required");
      const output = readFileSync(file === "-" ? 0 : file, "utf8");
      const res = await client.reportUsage({
        sessionId: values.session,
        requestId: values["request-id"] ?? "",
        source: { case: "claudeOutput", value: output },
      });
      return print(toJsonString(ReportUsageResponseSchema, res, { prettySpaces: 2 }));
    }
    case "release": {
      if (values.session === undefined) return fail("release: --session is required");
      const res = await client.release({ sessionId: values.session });
      return print(toJsonString(ReleaseResponseSchema, res, { prettySpaces: 2 }));
    }
    case "pause":
    case "resume": {
      const id = positionals[0];
      if (id === undefined) return fail(`${command}: a subscription id is required`);
      const res = await client.setPaused({ subscriptionId: id, paused: command === "pause" });
      return print(toJsonString(SetPausedResponseSchema, res, { prettySpaces: 2 }));
    }
    case "rebalance": {
      const res = await client.rebalance({ dryRun: values["dry-run"] ?? false });
      return print(toJsonString(RebalanceResponseSchema, res, { prettySpaces: 2 }));
    }
    case "events": {
      const types: EventType[] = [];
      for (const t of values.type ?? []) {
        const v = EventType[t.toUpperCase() as keyof typeof EventType];
        if (v === undefined) return fail(`--type: unknown event type "${t}"`);
        types.push(v);
      }
      if (values.after !== undefined && !/^[0-9]+$/.test(values.after)) return fail("--after: expected a sequence number");
      for await (const res of client.streamEvents({
        afterSequence: BigInt(values.after ?? "0"),
        types,
        subscriptionIds: values.subscription ?? [],
        tail: values.tail ?? false,
      })) {
        if (res.event !== undefined) process.stdout.write(`${toJsonString(EventSchema, res.event)}\n`);
      }
      return 0;
    }
    default:
      process.stderr.write(`${usage}\n`);
      return command === undefined || command === "help" || command === "--help" ? 0 : 2;
  }
}

async function serve(configFlag: string | undefined): Promise<number> {
  const logger = createJsonLogger();
  const file = configFlag ?? process.env.AUTHPOOL_CONFIG ?? defaultConfigPath;
  const config = applyEnv(await loadConfigFile(file), process.env);
  const server = await startAuthPoolServer({ config, logger });
  logger.info("serving", {
    url: server.url,
    config: config.source,
    store: redact(config.store.uri),
    subscriptions: config.subscriptions.map((s) => s.id),
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info("shutting down", { signal });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await server.close();
  logger.info("stopped", {});
  return 0;
}

/** figureTag says in brief what a percentage rests on: "[oauth 42s]", "[stale headers 20m]", "[learned]", "[budget]". */
function figureTag(f: UsageFigure | undefined): string {
  if (f === undefined) return "";
  if (f.basis === FigureBasis.LEARNED_ESTIMATE) return "[learned]";
  if (f.basis !== FigureBasis.UPSTREAM && f.basis !== FigureBasis.UPSTREAM_STALE) return "[budget]";
  const source = ["", "stream", "headers", "report", "oauth", "transcript"][f.source] ?? "upstream";
  const age = Number(f.age?.seconds ?? 0n);
  const ago = age < 120 ? `${age}s` : age < 7200 ? `${Math.round(age / 60)}m` : `${Math.round(age / 3600)}h`;
  return `[${f.basis === FigureBasis.UPSTREAM_STALE ? "stale " : ""}${source} ${ago}]`;
}

function statusName(status: number): string {
  return ["unspecified", "available", "approaching", "limited", "cooldown", "paused"][status] ?? String(status);
}

function print(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

function fail(message: string): number {
  process.stderr.write(`authpool: ${message}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof StoreError) {
      process.stderr.write(`authpool: ${error.message}\n`);
      process.exitCode = 78; // EX_CONFIG
    } else if (error instanceof ConnectError) {
      process.stderr.write(`authpool: ${Code[error.code] ?? error.code}: ${error.rawMessage}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`authpool: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
