import Table from "cli-table3";
import type { ClientStatus } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { Colors } from "./colors.js";
import { limitName } from "./enum-names.js";

/**
 * clientsTable renders GetPoolStatus's clients: sessions against the
 * client's most, its spend of the last 7 days and 5 hours against its
 * budgets, its calls waiting for a slot, and the limit refusing its new
 * sessions, if one does. A limit the client does not have is left out of
 * its cell rather than shown as 0.
 */
export function clientsTable(clients: readonly ClientStatus[], colors: Colors): string {
  const head = ["client", "sessions", "weekly", "5-hour", "waiting", "limited by"];
  const table = new Table({ head: head.map((h) => colors.bold(h)), style: { head: [], border: [] } });
  for (const c of clients) {
    const limit = c.limitedBy;
    table.push([
      c.name,
      sessionsCell(c, colors),
      spendCell(c.weeklyUsd, c.weeklyLimitUsd, colors),
      spendCell(c.fiveHourUsd, c.fiveHourLimitUsd, colors),
      c.waiting === 0 ? "" : String(c.waiting),
      limit === undefined ? "" : colors.red(limitName(limit.kind) || "limit"),
    ]);
  }
  return table.toString();
}

function sessionsCell(c: ClientStatus, colors: Colors): string {
  const held = c.maxSessions > 0 ? `${c.sessions}/${c.maxSessions}` : String(c.sessions);
  return c.share > 0 ? `${held}\n${colors.dim(`share ${Math.round(c.share * 100)}%`)}` : held;
}

/** spendCell: "$6.00 of $5.00", red at the limit and yellow from 80% of it; "$1.20" without one. */
function spendCell(spent: number, limit: number, colors: Colors): string {
  if (limit <= 0) return `$${spent.toFixed(2)}`;
  const text = `$${spent.toFixed(2)} of $${limit.toFixed(2)}`;
  return spent >= limit ? colors.red(text) : spent >= 0.8 * limit ? colors.yellow(text) : text;
}
