import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * bearerAuth requires `authorization: Bearer <token>` with one of `tokens`
 * on the methods of the services named in `protect`; health checks and
 * reflection stay open so load balancers and `buf curl --list-methods`
 * work without credentials. Tokens are compared as SHA-256 digests in
 * constant time, so neither their length nor their prefix leaks through
 * timing, and an error never echoes what the caller sent.
 */
export function bearerAuth(tokens: readonly string[], protect: readonly string[]): Interceptor {
  return (next) => async (req) => {
    if (tokens.length === 0 || !protect.includes(req.service.typeName)) return next(req);
    const header = req.header.get("authorization") ?? "";
    if (!/^Bearer\s+\S+$/i.test(header)) {
      throw new ConnectError("missing bearer token: send authorization: Bearer <token>", Code.Unauthenticated);
    }
    if (!bearerAllowed(tokens, header)) throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    return next(req);
  };
}

/** bearerAllowed says whether an authorization header carries one of tokens (always true without tokens). */
export function bearerAllowed(tokens: readonly string[], header: string | undefined): boolean {
  if (tokens.length === 0) return true;
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  if (match === null) return false;
  const given = digest(match[1]!);
  return tokens.some((t) => timingSafeEqual(digest(t), given));
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
