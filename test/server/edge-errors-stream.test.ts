import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { WriterUnavailableError } from "../../src/runtime/pool-writer.js";
import { edgeErrors } from "../../src/server/edge-errors.js";

/**
 * edgeErrors on a server stream: a stream's handler runs as it is read
 * (AllocateWatch submits to the writer there), so what it throws midway is
 * mapped as a unary handler's error is.
 */

async function streamed(error: unknown): Promise<{ messages: unknown[]; error: ConnectError }> {
  const call = edgeErrors(
    async () =>
      ({
        stream: true,
        message: (async function* () {
          yield "first";
          throw error;
        })(),
      }) as never,
  );
  const res = (await call({} as never)) as unknown as { message: AsyncIterable<unknown> };
  const messages: unknown[] = [];
  try {
    for await (const m of res.message) messages.push(m);
  } catch (e) {
    return { messages, error: ConnectError.from(e) };
  }
  throw new Error("edgeErrors swallowed the error");
}

describe("edgeErrors on a server stream", () => {
  it("answers a refused store write midway as UNAVAILABLE, after the messages already sent", async () => {
    const out = await streamed(new WriterUnavailableError("the pool store refused the write: disk full"));
    expect(out.messages).toEqual(["first"]);
    expect(out.error).toMatchObject({
      code: Code.Unavailable,
      rawMessage: "the pool store refused the write: disk full",
    });
  });

  it("makes a midway message well-formed, and passes a sendable ConnectError unchanged", async () => {
    expect((await streamed(new ConnectError("bad \ud800", Code.InvalidArgument))).error.rawMessage).toBe("bad \ufffd");
    const sendable = new ConnectError("client x waited 5 s", Code.ResourceExhausted);
    expect((await streamed(sendable)).error).toBe(sendable);
  });
});
