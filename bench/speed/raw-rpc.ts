import http2 from "node:http2";

/** Protocol: the wire protocols the bench drives. */
export type Protocol = "grpc" | "connect";

/** RpcError: a call that did not end with status OK. */
export class RpcError extends Error {
  override name = "RpcError";
}

/**
 * RawRpcClient makes unary calls with pre-encoded protobuf bodies straight
 * over one HTTP/2 connection: gRPC (length-prefixed body, status in the
 * trailers) or Connect (plain body, application/proto, status in the HTTP
 * status). It does no more than a call needs, so the load generator spends
 * as little CPU as possible per call and the server's cost is what shows.
 */
export class RawRpcClient {
  private readonly session: http2.ClientHttp2Session;
  private readonly protocol: Protocol;

  constructor(url: string, protocol: Protocol) {
    this.session = http2.connect(url);
    this.session.on("error", () => {});
    this.protocol = protocol;
  }

  /** call posts body to path ("/package.Service/Method") and resolves with the reply's message bytes. */
  call(path: string, body: Uint8Array): Promise<Buffer> {
    const grpc = this.protocol === "grpc";
    const stream = this.session.request({
      ":method": "POST",
      ":path": path,
      "content-type": grpc ? "application/grpc" : "application/proto",
      ...(grpc ? { te: "trailers" } : { "connect-protocol-version": "1" }),
    });
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let httpStatus = 0;
      stream.on("response", (headers) => {
        httpStatus = Number(headers[":status"]);
        // gRPC "trailers-only": an error before any message.
        const s = headers["grpc-status"];
        if (typeof s === "string") status = s;
      });
      stream.on("trailers", (trailers) => {
        const s = trailers["grpc-status"];
        if (typeof s === "string") status = s;
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", reject);
      stream.on("end", () => {
        const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (grpc) {
          if (status !== "0") return reject(new RpcError(`grpc-status ${status ?? "missing"}`));
          return resolve(data.subarray(5));
        }
        if (httpStatus !== 200)
          return reject(new RpcError(`HTTP ${httpStatus}: ${data.toString("utf8").slice(0, 200)}`));
        resolve(data);
      });
      if (grpc) {
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(body.length, 1);
        stream.write(prefix);
      }
      stream.end(body);
    });
  }

  close(): void {
    this.session.close();
  }
}
