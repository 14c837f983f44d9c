import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor, createContextKey } from "@connectrpc/connect";
import type { BearerRole, BearerToken } from "../config/index.js";

/**
 * METHOD_ROLES is the role each AuthPoolService method needs besides admin
 * (which may call everything). A method missing here needs admin, so a new
 * RPC is closed until it is given a role on purpose.
 */
export const METHOD_ROLES: Readonly<Record<string, BearerRole>> = Object.freeze({
  Allocate: "client",
  AllocateWatch: "client",
  ReportUsage: "client",
  Release: "client",
  GetPoolStatus: "reader",
  GetUsage: "reader",
  GetUsageHistory: "reader",
  StreamEvents: "reader",
  Rebalance: "admin",
  SetPaused: "admin",
  SetDrained: "admin",
  ReloadConfig: "admin",
  ClearCooldown: "admin",
});

/** METRICS_ROLE is the role GET /metrics needs besides admin. */
export const METRICS_ROLE: BearerRole = "reader";

/**
 * Caller is who a call comes from, as its token says. `client` is the name
 * the token was given (`role:name:token`); `bound` is true when the call
 * may only act for that client (a named token without the admin role).
 * Unbound calls name their client themselves: without authentication, with
 * an admin token (acting for a client), or with a token given no name.
 */
export interface Caller {
  readonly client?: string;
  readonly bound: boolean;
}

/** CALLER is the handlers' view of the caller (set by the interceptor; open servers: anyone, unbound). */
export const CALLER = createContextKey<Caller>({ bound: false }, { description: "authpool caller" });

/** AuthDecision is whether a request may go on, and if not, why (never quoting the token). */
export type AuthDecision =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly code: Code.Unauthenticated | Code.PermissionDenied; readonly message: string };

/** BearerAuth checks `authorization: Bearer <token>` headers against the configured tokens and roles. */
export interface BearerAuth {
  /** False without tokens: every request is let through. */
  readonly enabled: boolean;
  /** check decides whether `header` carries a token that has `role` (or admin); `what` names the call in errors. */
  check(header: string | undefined, role: BearerRole, what: string): AuthDecision;
  /**
   * interceptor requires a token with the method's role (METHOD_ROLES) on the
   * services named in `protect`; health checks and reflection stay open so
   * load balancers and `buf curl --list-methods` work without credentials.
   */
  interceptor(protect: readonly string[]): Interceptor;
}

const ROLE_BITS: Readonly<Record<BearerRole, number>> = { client: 1, reader: 2, admin: 4 };

/**
 * createBearerAuth prepares the tokens once: each is kept as its SHA-256
 * digest, and a presented token is hashed and compared with every one of
 * them with timingSafeEqual, without stopping at a match. Equal-length
 * digests and no early exit mean that neither a token's length, nor its
 * prefix, nor which entry matched shows in the time a check takes. A token
 * listed under several roles has all of them.
 */
export function createBearerAuth(tokens: readonly BearerToken[]): BearerAuth {
  const entries = tokens.map((t) => ({ digest: digest(t.token), bit: ROLE_BITS[t.role], client: t.client }));
  const identify = (given: string): { roles: number; client: string | undefined } => {
    const presented = digest(given);
    let roles = 0;
    let client: string | undefined;
    for (const entry of entries) {
      // Bitwise, not a branch, so a match costs the same as a miss.
      const match = Number(timingSafeEqual(entry.digest, presented));
      roles |= entry.bit * match;
      client = match === 1 && entry.client !== undefined ? entry.client : client;
    }
    return { roles, client };
  };
  const check = (header: string | undefined, role: BearerRole, what: string): AuthDecision => {
    if (entries.length === 0) return { ok: true, caller: OPEN };
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
    if (match === null) {
      return {
        ok: false,
        code: Code.Unauthenticated,
        message: "missing bearer token: send authorization: Bearer <token>",
      };
    }
    const { roles, client } = identify(match[1]!);
    if (roles === 0) return { ok: false, code: Code.Unauthenticated, message: "invalid bearer token" };
    if ((roles & (ROLE_BITS[role] | ROLE_BITS.admin)) === 0) {
      return {
        ok: false,
        code: Code.PermissionDenied,
        message: `${what} needs the ${role} role${role === "admin" ? "" : " (or admin)"}; this token has the ${roleNames(roles)} role`,
      };
    }
    // An admin acts for whichever client it names; a named client token only for itself.
    const bound = client !== undefined && (roles & ROLE_BITS.admin) === 0;
    return { ok: true, caller: client === undefined ? { bound } : { client, bound } };
  };
  return {
    enabled: entries.length > 0,
    check,
    interceptor: (protect) => (next) => async (req) => {
      if (entries.length === 0 || !protect.includes(req.service.typeName)) return next(req);
      const method = req.method.name;
      const decision = check(req.header.get("authorization") ?? undefined, METHOD_ROLES[method] ?? "admin", method);
      if (!decision.ok) throw new ConnectError(decision.message, decision.code);
      req.contextValues.set(CALLER, decision.caller);
      return next(req);
    },
  };
}

const OPEN: Caller = { bound: false };

function roleNames(bits: number): string {
  return (Object.keys(ROLE_BITS) as BearerRole[]).filter((r) => (bits & ROLE_BITS[r]) !== 0).join(" and ");
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
