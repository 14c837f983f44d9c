import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { type AuthPoolClient, createAuthPoolClient } from "../src/client/index.js";

const run = promisify(execFile);

/**
 * runPrompt is how a gateway uses the pool for one `claude -p` run:
 * allocate -> run Claude with the granted CLAUDE_CONFIG_DIR -> report its
 * stdout -> release. (A gateway holding a conversation open would allocate
 * once per turn with the same session id and release when the
 * conversation ends.)
 */
export async function runPrompt(
  pool: AuthPoolClient,
  prompt: string,
  options: { sessionId?: string; claudeBin?: string } = {},
): Promise<{ text: string; subscriptionId: string }> {
  const allocation = await pool.allocate({ sessionId: options.sessionId ?? "", model: "sonnet" });
  const { sessionId } = allocation;
  try {
    if (allocation.outcome.case !== "subscription") {
      // Every subscription is spent: use the paid API (allocation.outcome.value.provider).
      throw new Error(`fallback to ${allocation.outcome.value?.provider}: ${allocation.outcome.value?.reason}`);
    }
    const grant = allocation.outcome.value;
    const { stdout } = await run(options.claudeBin ?? "claude", ["-p", prompt, "--output-format", "json"], {
      env: { ...process.env, CLAUDE_CONFIG_DIR: grant.configDir },
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? "" })); // a limit exits non-zero but prints JSON
    const report = await pool.reportUsage({
      sessionId,
      requestId: `${sessionId}:1`, // makes a retried report count once
      source: { case: "claudeOutput", value: stdout },
    });
    if (report.limit) throw new Error(`subscription ${grant.subscriptionId} hit its limit: ${report.limit.message}`);
    const result = JSON.parse(stdout) as { result?: string };
    return { text: result.result ?? "", subscriptionId: grant.subscriptionId };
  } finally {
    await pool.release({ sessionId });
  }
}

// node dist/examples/gateway.js "What is 2+2?"
if (import.meta.url === `file://${process.argv[1]}`) {
  const pool = createAuthPoolClient(process.env.AUTHPOOL_URL ?? "http://127.0.0.1:50051");
  runPrompt(pool, process.argv[2] ?? "What is 2+2?").then(
    (r) => console.log(`[${r.subscriptionId}] ${r.text}`),
    (e: unknown) => {
      console.error(String(e));
      process.exitCode = 1;
    },
  );
}
