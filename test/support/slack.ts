import { afterEach, expect, vi } from "vitest";
import type { AuthPoolClient } from "../../src/client/index.js";
import { type Answer, Receiver } from "./http-receiver.js";
import type { ManualClock } from "./manual-clock.js";
import { type TestPool, fixture, startTestPool } from "./test-server.js";

/** SLACK_TOKEN is the part of a Slack incoming-webhook URL that is the credential. */
export const SLACK_TOKEN = "xoxT0kenS3cretPart42";
/** SLACK_PATH is an incoming-webhook path as Slack hands them out. */
export const SLACK_PATH = `/services/T0AUTHPOOL/B0ALERTS/${SLACK_TOKEN}`;

/** SlackBody is what an incoming webhook is posted. */
export interface SlackBody {
  text: string;
  blocks: { type: string; text?: { text: string }; elements?: { text: string }[] }[];
}

/** messageText is everything a person sees of a message, one block a line. */
export function messageText(body: SlackBody): string {
  return body.blocks.map((b) => b.text?.text ?? b.elements?.map((e) => e.text).join(" ") ?? "").join("\n");
}

/** grantOf is the subscription an Allocate placed the session on. */
export function grantOf(res: Awaited<ReturnType<AuthPoolClient["allocate"]>>): { subscriptionId: string } {
  if (res.outcome.case !== "subscription") throw new Error(`expected a grant, got ${res.outcome.case}`);
  return res.outcome.value;
}

/** limitOutput is a Claude result that hit the 5-hour limit, resetting at the next 14:00 UTC; `n` makes each distinct. */
export async function limitOutput(n: number): Promise<string> {
  const output = JSON.parse(await fixture("claude-cli/limit-current.json")) as Record<string, unknown>;
  output.result = "You've hit your 5-hour limit · resets 2pm (UTC)";
  output.uuid = `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
  return JSON.stringify(output);
}

/** reportLimit sends the session's n-th limit report. */
export async function reportLimit(client: AuthPoolClient, sessionId: string, n: number): Promise<void> {
  await client.reportUsage({
    sessionId,
    requestId: `r${n}`,
    source: { case: "claudeOutput", value: await limitOutput(n) },
  });
}

/** SlackPoolOptions: the pool's clock, its rules, and settings over the Slack defaults of a test. */
export interface SlackPoolOptions {
  clock?: ManualClock;
  rules?: Record<string, unknown>[];
  /** Merged over `{ url, retryPauseSeconds: 0.05 }`. */
  slack?: Record<string, unknown>;
  /** How the Slack receiver answers (default 200). */
  answer?: (n: number, body: string) => Answer;
}

/** SlackPool is a test pool whose Slack posts to a local receiver, and the server's log lines. */
export interface SlackPool {
  pool: TestPool;
  slack: Receiver;
  lines: string[];
}

/**
 * slackPools registers an afterEach that closes whatever its start() opened,
 * and returns start(): a test pool (fast retries) whose Slack is a real
 * receiver at SLACK_PATH.
 */
export function slackPools(): (options?: SlackPoolOptions) => Promise<SlackPool> {
  const opened: SlackPool[] = [];
  afterEach(async () => {
    for (const { pool, slack } of opened.splice(0)) {
      await pool.close();
      await slack.close();
    }
  });
  return async (options = {}) => {
    const slack = new Receiver();
    if (options.answer !== undefined) slack.answer = options.answer;
    const url = await slack.listen(SLACK_PATH);
    const lines: string[] = [];
    const pool = await startTestPool({
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      config: {
        notifications: {
          rules: options.rules ?? [],
          slack: { url, retryPauseSeconds: 0.05, ...options.slack },
        },
      },
      webhookBackoff: { baseMs: 1, maxMs: 5 },
      logLines: lines,
    });
    const started = { pool, slack, lines };
    opened.push(started);
    return started;
  };
}

/** allDelivered waits until the dispatchers (webhook, Slack) are done with every event written so far. */
export async function allDelivered(p: TestPool): Promise<void> {
  await vi.waitFor(
    async () => {
      const n = (await p.grpc.getPoolStatus({})).notifications;
      expect(n?.deliveredSequence).toBe(BigInt(p.server.feed.headSeq));
    },
    { timeout: 10_000, interval: 10 },
  );
}
