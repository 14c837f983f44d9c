import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { describeConnectError, isUnreachable } from "../../src/cli/connect-errors.js";

const URL = "http://127.0.0.1:50051";
const POOL = { url: URL };
const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:50051"), { code: "ECONNREFUSED" });

describe("describeConnectError()", () => {
  it.each([
    {
      name: "a refused connection",
      error: new ConnectError("connect ECONNREFUSED", Code.Unavailable, undefined, undefined, refused),
      exit: 3,
    },
    {
      name: "every address refused (happy eyeballs)",
      error: new ConnectError(
        "connect failed",
        Code.Unavailable,
        undefined,
        undefined,
        new AggregateError([refused, refused]),
      ),
      exit: 3,
    },
    {
      name: "a name that does not resolve",
      error: new ConnectError("getaddrinfo", Code.Unavailable, undefined, undefined, { code: "ENOTFOUND" }),
      exit: 3,
    },
    {
      name: "a pool that answered UNAVAILABLE itself",
      error: new ConnectError("store write refused", Code.Unavailable),
      exit: 1,
    },
    { name: "UNAUTHENTICATED", error: new ConnectError("missing bearer token", Code.Unauthenticated), exit: 4 },
    { name: "PERMISSION_DENIED", error: new ConnectError("no", Code.PermissionDenied), exit: 4 },
    { name: "NOT_FOUND", error: new ConnectError('subscription "x" is not configured', Code.NotFound), exit: 5 },
    {
      name: "RESOURCE_EXHAUSTED",
      error: new ConnectError("every subscription is excluded", Code.ResourceExhausted),
      exit: 75,
    },
    { name: "INVALID_ARGUMENT", error: new ConnectError("session_id: too long", Code.InvalidArgument), exit: 1 },
    { name: "UNIMPLEMENTED", error: new ConnectError("SetDrained is being built", Code.Unimplemented), exit: 1 },
  ])("should map $name to exit code $exit", ({ error, exit }) => {
    const report = describeConnectError(error, POOL);
    expect(report.exitCode).toBe(exit);
    expect(report.message).toMatch(/^authpool: /);
  });

  it("should name the URL and how to start a pool when nothing answers", () => {
    const { message } = describeConnectError(
      new ConnectError("connect ECONNREFUSED", Code.Unavailable, undefined, undefined, refused),
      POOL,
    );
    expect(message).toContain(URL);
    expect(message).toContain("authpool serve");
    expect(message).toContain("npm start");
  });

  it("should point at --token and AUTHPOOL_TOKEN when the call is refused", () => {
    const { message } = describeConnectError(new ConnectError("missing bearer token", Code.Unauthenticated), POOL);
    expect(message).toContain("UNAUTHENTICATED: missing bearer token");
    expect(message).toMatch(/--token.*AUTHPOOL_TOKEN/);
  });
});

describe("describeConnectError() on a TLS mismatch", () => {
  const TLS_URL = "https://127.0.0.1:50051";
  const untrusted = new ConnectError("self-signed certificate", Code.Internal, undefined, undefined, {
    code: "DEPTH_ZERO_SELF_SIGNED_CERT",
  });

  it.each([
    {
      name: "an http:// URL against a TLS pool over HTTP/2",
      error: new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled),
      target: POOL,
      says: ["most likely serves TLS", "Use https://127.0.0.1:50051", "--ca FILE or AUTHPOOL_CA"],
    },
    {
      name: "an http:// URL against a TLS pool over HTTP/1.1",
      error: new ConnectError("socket hang up", Code.Unavailable, undefined, undefined, { code: "ECONNRESET" }),
      target: POOL,
      says: ["Use https://127.0.0.1:50051"],
    },
    {
      name: "a self-signed certificate without --ca",
      error: untrusted,
      target: { url: TLS_URL },
      says: ["does not trust (self-signed certificate)", "--ca FILE or AUTHPOOL_CA"],
    },
    {
      name: "a self-signed certificate with the wrong --ca",
      error: untrusted,
      target: { url: TLS_URL, caFile: "/etc/other.pem" },
      says: ["/etc/other.pem is not the certificate that signed it"],
    },
    {
      name: "an https:// URL against a cleartext pool",
      error: new ConnectError("write EPROTO …:ssl3_get_record:wrong version number", Code.Internal),
      target: { url: TLS_URL },
      says: ["does not speak TLS", "Use http://127.0.0.1:50051"],
    },
  ])("should say what to do about $name (exit 3)", ({ error, target, says }) => {
    const report = describeConnectError(error, target);
    expect(report.exitCode).toBe(3);
    for (const text of says) expect(report.message).toContain(text);
  });

  it("should leave a CANCELED call to an https:// pool alone", () => {
    const report = describeConnectError(new ConnectError("stream closed with error code CANCEL", Code.Canceled), {
      url: TLS_URL,
    });
    expect(report.exitCode).toBe(1);
  });
});

describe("describeConnectError() on PERMISSION_DENIED", () => {
  it("should name the role the server says the call needs, and not ask for a token as if none was given", () => {
    const { message } = describeConnectError(
      new ConnectError("Rebalance needs the admin role; this token has the reader role", Code.PermissionDenied),
      POOL,
    );
    expect(message).toContain("The token given lacks the admin role");
    expect(message).toContain("pass an admin token");
    expect(message).not.toContain("Pass the bearer token");
  });

  it("should fall back to the method's role when the server does not name one", () => {
    const { message } = describeConnectError(new ConnectError("forbidden", Code.PermissionDenied), POOL);
    expect(message).toContain("lacks the role this call needs");
  });
});

describe("isUnreachable()", () => {
  it("should rely on the message when the cause is gone", () => {
    expect(isUnreachable(new ConnectError("connect ECONNREFUSED 127.0.0.1:1", Code.Unavailable))).toBe(true);
    expect(isUnreachable(new ConnectError("connect ECONNREFUSED 127.0.0.1:1", Code.Internal))).toBe(false);
    expect(isUnreachable(new Error("ECONNREFUSED"))).toBe(false);
  });
});
