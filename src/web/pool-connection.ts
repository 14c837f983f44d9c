import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AuthPoolService } from "../../gen/authpool/v1/auth_pool_pb.js";

/**
 * The dashboard's way to the pool: the generated client over the Connect
 * protocol, to the origin that served the page, with the bearer token the
 * operator typed. The token lives in this tab's sessionStorage only: it
 * survives a reload of the tab, not the tab itself.
 */

const TOKEN_KEY = "authpool.token";

export type PoolClient = Client<typeof AuthPoolService>;

export function savedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function saveToken(token: string | undefined): void {
  if (token === undefined) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** connectPool makes a client that sends `token` (when set) with every call. */
export function connectPool(token: string | undefined): PoolClient {
  const transport = createConnectTransport({
    baseUrl: location.origin,
    interceptors: [
      (next) => (req) => {
        if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  });
  return createClient(AuthPoolService, transport);
}

/** needsToken: the pool asks for a token (none given, or not one it knows). */
export function needsToken(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Unauthenticated;
}

/** refusalText says why a call was refused, in words for the page. */
export function refusalText(error: unknown): string {
  const e = ConnectError.from(error);
  if (e.code === Code.PermissionDenied) return `Refused: ${e.rawMessage} (an admin token is needed to change the pool)`;
  if (e.code === Code.Unavailable) return "The pool cannot be reached; retrying.";
  return `${Code[e.code] ?? "error"}: ${e.rawMessage}`;
}
