#!/usr/bin/env node
// A stand-in for `claude -p ... --output-format json`, to try `authpool exec`
// without a Claude account: it prints a result shaped like Claude Code's
// (cost, usage, modelUsage keyed by model) and says on stderr which config
// dir it was given. With FAKE_CLAUDE_LIMIT=1 it prints a usage-limit result
// instead, as Claude does when the 5-hour window is spent; with
// FAKE_CLAUDE_LIMIT_ON=<text> only when the config dir ends with <text>.
import { randomUUID } from "node:crypto";

const prompt = process.argv[process.argv.indexOf("-p") + 1] ?? "";
process.stderr.write(`fake-claude: CLAUDE_CONFIG_DIR=${process.env.CLAUDE_CONFIG_DIR ?? "(unset)"}\n`);

const limitOn = process.env.FAKE_CLAUDE_LIMIT_ON;
const limited =
  process.env.FAKE_CLAUDE_LIMIT === "1" ||
  (limitOn !== undefined && limitOn !== "" && (process.env.CLAUDE_CONFIG_DIR ?? "").endsWith(limitOn));
const resetsAt = new Date(Date.now() + 2 * 3_600_000);
const hour = resetsAt.getUTCHours();
const resetText = `${hour % 12 === 0 ? 12 : hour % 12}${hour < 12 ? "am" : "pm"} (UTC)`;

const result = limited
  ? {
      type: "result",
      subtype: "success",
      is_error: true,
      api_error_status: 429,
      duration_ms: 310,
      num_turns: 1,
      result: `You've hit your 5-hour limit · resets ${resetText}`,
      session_id: randomUUID(),
      uuid: randomUUID(),
      total_cost_usd: 0,
      usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      modelUsage: {},
    }
  : {
      type: "result",
      subtype: "success",
      is_error: false,
      duration_ms: 2140,
      num_turns: 1,
      result: `(fake) you said: ${prompt}`,
      session_id: randomUUID(),
      uuid: randomUUID(),
      total_cost_usd: 0.0123,
      usage: { input_tokens: 3, output_tokens: 12, cache_creation_input_tokens: 1234, cache_read_input_tokens: 15000 },
      modelUsage: {
        "claude-sonnet-4-5-20250929": {
          inputTokens: 3,
          outputTokens: 12,
          cacheReadInputTokens: 15000,
          cacheCreationInputTokens: 1234,
          webSearchRequests: 0,
          costUSD: 0.0123,
          contextWindow: 200000,
        },
      },
    };
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(limited ? 1 : 0);
