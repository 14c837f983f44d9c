import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthPoolService, file_authpool_v1_auth_pool } from "../../gen/authpool/v1/auth_pool_pb.js";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import {
  ServerReflection as ServerReflectionV1,
  type ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { registerHealth } from "../../src/server/health.js";
import { listen, type Listener } from "../../src/server/listener.js";
import { registerReflection } from "../../src/server/reflection.js";

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
const run = promisify(execFile);

type Query = MessageInitShape<typeof ServerReflectionRequestSchema>["messageRequest"];
type Answer = ServerReflectionResponse["messageResponse"];

let listener: Listener;

beforeAll(async () => {
  const routes = (router: ConnectRouter): void => {
    // No implementation: every method answers Unimplemented, which is all
    // reflection needs to describe the service.
    router.service(AuthPoolService, {});
    registerHealth(router, () => true);
    registerReflection(router, [file_authpool_v1_auth_pool, file_grpc_health_v1_health]);
  };
  listener = await listen(connectNodeAdapter({ routes }), { host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await listener?.close({ graceMs: 1_000 });
});

/** Sends the queries on one v1 reflection stream (Connect protocol) and returns the answers in order. */
async function reflect(queries: Query[]): Promise<Answer[]> {
  const client = createClient(ServerReflectionV1, createConnectTransport({ baseUrl: listener.url, httpVersion: "2" }));
  const answers: Answer[] = [];
  const requests = toStream(queries.map((messageRequest) => ({ host: "", messageRequest })));
  for await (const res of client.serverReflectionInfo(requests)) answers.push(res.messageResponse);
  return answers;
}

async function* toStream<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

/** Names of the files in a file_descriptor_response, in order. */
function fileNames(answer: Answer | undefined): string[] {
  if (answer?.case !== "fileDescriptorResponse") throw new Error(`unexpected answer ${answer?.case}`);
  return answer.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

describe("server reflection", () => {
  it("lets buf curl list methods without a schema", async () => {
    const { stdout } = await run(BUF, [
      "curl",
      "--list-methods",
      "--http2-prior-knowledge",
      "--protocol",
      "grpc",
      listener.url,
    ]);
    const methods = stdout.split("\n").filter(Boolean);
    expect(methods).toContain("authpool.v1.AuthPoolService/Allocate");
    expect(methods).toContain("authpool.v1.AuthPoolService/StreamEvents");
    expect(methods).toContain("grpc.health.v1.Health/Check");
  });

  it("lets buf curl call a method with the schema it reflected", async () => {
    const { stdout } = await run(BUF, [
      "curl",
      "--http2-prior-knowledge",
      "--protocol",
      "grpc",
      "--data",
      '{"service": "authpool.v1.AuthPoolService"}',
      `${listener.url}/grpc.health.v1.Health/Check`,
    ]);
    expect(JSON.parse(stdout)).toEqual({ status: "SERVING" });
  });

  it("finds the file containing a service, with its dependencies", async () => {
    const [answer] = await reflect([{ case: "fileContainingSymbol", value: AuthPoolService.typeName }]);
    const names = fileNames(answer);
    expect(names[0]).toBe("authpool/v1/auth_pool.proto");
    expect(names).toEqual(
      expect.arrayContaining(["google/protobuf/timestamp.proto", "google/protobuf/duration.proto"]),
    );
  });

  it("resolves methods, messages, enums and files by name", async () => {
    const answers = await reflect([
      { case: "fileContainingSymbol", value: "authpool.v1.AuthPoolService.Allocate" },
      { case: "fileContainingSymbol", value: "authpool.v1.AllocateRequest" },
      { case: "fileContainingSymbol", value: "authpool.v1.Priority" },
      { case: "fileContainingSymbol", value: "google.protobuf.Duration" },
      { case: "fileByFilename", value: "grpc/health/v1/health.proto" },
    ]);
    expect(answers.map((a) => fileNames(a)[0])).toEqual([
      "authpool/v1/auth_pool.proto",
      "authpool/v1/auth_pool.proto",
      "authpool/v1/auth_pool.proto",
      "google/protobuf/duration.proto",
      "grpc/health/v1/health.proto",
    ]);
    // Dependencies go once per stream; the requested file always comes back.
    expect(fileNames(answers[1])).toEqual(["authpool/v1/auth_pool.proto"]);
  });

  it("answers NOT_FOUND for unknown symbols, files and extensions", async () => {
    const answers = await reflect([
      { case: "fileContainingSymbol", value: "authpool.v1.NoSuchThing" },
      { case: "fileByFilename", value: "nope.proto" },
      {
        case: "fileContainingExtension",
        value: { containingType: "authpool.v1.AllocateRequest", extensionNumber: 100 },
      },
    ]);
    for (const answer of answers) {
      expect(answer.case).toBe("errorResponse");
      expect(answer.value).toMatchObject({ errorCode: Code.NotFound });
    }
  });

  it("lists extension numbers of known messages only", async () => {
    const [known, unknown] = await reflect([
      { case: "allExtensionNumbersOfType", value: "authpool.v1.AllocateRequest" },
      { case: "allExtensionNumbersOfType", value: "authpool.v1.AuthPoolService" },
    ]);
    expect(known).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "authpool.v1.AllocateRequest", extensionNumber: [] },
    });
    expect(unknown).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NotFound } });
  });

  it("lists services on v1alpha too, over gRPC", async () => {
    const client = createClient(ServerReflectionV1alpha, createGrpcTransport({ baseUrl: listener.url }));
    const requests = toStream([{ messageRequest: { case: "listServices" as const, value: "" } }]);
    const names: string[] = [];
    for await (const { messageResponse: answer } of client.serverReflectionInfo(requests)) {
      if (answer.case === "listServicesResponse") names.push(...answer.value.service.map((s) => s.name));
    }
    expect(names).toEqual(
      expect.arrayContaining([
        "authpool.v1.AuthPoolService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]),
    );
  });
});
