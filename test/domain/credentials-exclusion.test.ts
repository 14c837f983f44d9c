/**
 * A subscription Claude cannot sign in with is never offered: a check's
 * finding (no credentials, expired, login required) excludes it with that
 * reason, moves the sessions it holds, scores its health 0, and a later
 * "ok" takes it back. Only changes are journaled. Health also reads 0 for
 * a subscription cooling down or paused (it used to read 100).
 */
import { describe, expect, it } from "vitest";
import { type Command, Pool, createPoolState } from "../../src/domain/index.js";
import { poolSettings } from "../support/settings.js";

const T0 = Date.parse("2026-12-02T12:00:00Z");

const allocate = (sessionId: string): Command => ({
  kind: "allocate",
  sessionId,
  priority: "normal",
  model: "",
  estimatedTokens: 0,
});
const credentials = (
  subscriptionId: string,
  status: "ok" | "no_credentials" | "credentials_expired" | "login_required",
  reason = "",
): Command => ({
  kind: "credentials",
  subscriptionId,
  status,
  reason,
});

function pool(): Pool {
  return new Pool(createPoolState(["a", "b"]), poolSettings(["a", "b"]));
}

function view(p: Pool, id: string) {
  const res = p.run({ kind: "status", includeSessions: false }, T0);
  return res.result.views.find((v) => v.cfg.id === id)!;
}

describe("credentials", () => {
  it.each(["no_credentials", "credentials_expired", "login_required"] as const)(
    "excludes a subscription whose check says %s, and takes it back on ok",
    (status) => {
      const p = pool();
      const reason = `${status}: the operator must act`;
      const { events } = p.run(credentials("a", status, reason), T0);
      expect(events.map((e) => e.type)).toContain("credentials_changed");
      expect(events.find((e) => e.type === "status_changed")).toMatchObject({
        subscriptionId: "a",
        to: "signed_out",
        reason,
      });
      const v = view(p, "a");
      expect(v.status).toBe("signed_out");
      expect(v.health.score).toBe(0);
      // Every allocation goes to b while a is signed out.
      for (let i = 0; i < 5; i++) {
        const r = p.run(allocate(`s${i}`), T0).result;
        expect(r).toMatchObject({ kind: "granted", view: { cfg: { id: "b" } } });
      }
      const fallback = pool();
      fallback.run(credentials("a", status, reason), T0);
      fallback.run(credentials("b", status, reason), T0);
      const none = fallback.run(allocate("x"), T0).result;
      expect(none.kind).toBe("fallback");
      expect(JSON.stringify(none)).toContain(status);

      // The same finding again records nothing; ok takes it back.
      expect(p.run(credentials("a", status, reason), T0).events).toEqual([]);
      const back = p.run(credentials("a", "ok"), T0 + 1000).events;
      expect(back.find((e) => e.type === "status_changed")).toMatchObject({
        subscriptionId: "a",
        from: "signed_out",
        reason: "signed in again",
      });
      expect(view(p, "a").status).not.toBe("signed_out");
      expect(view(p, "a").health.score).toBeGreaterThan(0);
      expect(p.run(credentials("a", "ok"), T0 + 2000).events).toEqual([]);
    },
  );

  it("moves a session held by a subscription that signed out when it resumes", () => {
    const p = pool();
    const first = p.run(allocate("s1"), T0).result as { kind: string; view: { cfg: { id: string } } };
    expect(first.kind).toBe("granted");
    const held = first.view.cfg.id;
    const other = held === "a" ? "b" : "a";
    p.run(credentials(held, "login_required", "refresh token rejected"), T0);
    const again = p.run(allocate("s1"), T0 + 1000).result;
    expect(again).toMatchObject({ kind: "granted", view: { cfg: { id: other } } });
  });

  it("refuses a check for a subscription the config does not have", () => {
    const p = pool();
    expect(p.run(credentials("zz", "login_required", "x"), T0).result).toMatchObject({
      kind: "rejected",
      code: "not_found",
    });
  });

  it("scores a subscription cooling down or paused 0, with the reason in every component", () => {
    const p = pool();
    p.run({ kind: "set_paused", subscriptionId: "a", paused: true }, T0);
    const paused = view(p, "a");
    expect(paused.health.score).toBe(0);
    expect(paused.health.components.every((c) => c.points === 0 && c.detail.endsWith("0 while paused"))).toBe(true);
    expect(view(p, "b").health.score).toBeGreaterThan(90);
  });
});
