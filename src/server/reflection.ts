import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import {
  file_grpc_reflection_v1_reflection,
  ServerReflection as ServerReflectionV1,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  file_grpc_reflection_v1alpha_reflection,
  ServerReflection as ServerReflectionV1alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

// v1 and v1alpha messages are the same on the wire and in shape; only their
// type names differ. These structural types let one implementation serve both.

type Query = {
  host: string;
  messageRequest:
    | { case: "fileByFilename"; value: string }
    | { case: "fileContainingSymbol"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: "allExtensionNumbersOfType"; value: string }
    | { case: "listServices"; value: string }
    | { case: undefined; value?: undefined };
};

type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** Index answers reflection queries over a fixed set of files and their dependencies. */
class Index {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly messages = new Set<string>();
  private readonly extensions = new Map<string, Map<number, DescFile>>();
  private readonly services: string[] = [];
  private readonly encoded = new Map<DescFile, Uint8Array>();

  constructor(roots: DescFile[]) {
    for (const file of roots) {
      for (const service of file.services) {
        if (!this.services.includes(service.typeName)) this.services.push(service.typeName);
      }
      this.addFile(file);
    }
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const desc of nestedTypes(file)) {
      this.symbols.set(desc.typeName, file);
      switch (desc.kind) {
        case "service":
          for (const method of desc.methods) this.symbols.set(`${desc.typeName}.${method.name}`, file);
          break;
        case "message":
          this.messages.add(desc.typeName);
          for (const field of desc.fields) this.symbols.set(`${desc.typeName}.${field.name}`, file);
          break;
        case "enum": {
          // Enum values are scoped as siblings of their enum, not inside it.
          const scope = desc.typeName.slice(0, desc.typeName.length - desc.name.length);
          for (const value of desc.values) this.symbols.set(scope + value.name, file);
          break;
        }
        case "extension": {
          const byNumber = this.extensions.get(desc.extendee.typeName) ?? new Map<number, DescFile>();
          byNumber.set(desc.number, file);
          this.extensions.set(desc.extendee.typeName, byNumber);
          break;
        }
      }
    }
    for (const dep of file.dependencies) this.addFile(dep);
  }

  /** answer handles one query; `sent` holds the files this stream already has. */
  answer(query: Query, sent: Set<string>): Answer {
    const req = query.messageRequest;
    switch (req.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.services.map((name) => ({ name })) } };
      case "fileByFilename":
        return this.withDependencies(this.files.get(req.value), sent, `file ${req.value}`);
      case "fileContainingSymbol":
        return this.withDependencies(this.symbols.get(req.value), sent, `symbol ${req.value}`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = req.value;
        const file = this.extensions.get(containingType)?.get(extensionNumber);
        return this.withDependencies(file, sent, `extension ${extensionNumber} of ${containingType}`);
      }
      case "allExtensionNumbersOfType": {
        if (!this.messages.has(req.value)) return notFound(`message ${req.value}`);
        const extensionNumber = [...(this.extensions.get(req.value)?.keys() ?? [])];
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: req.value, extensionNumber } };
      }
      default:
        return errorAnswer(Code.InvalidArgument, "empty request");
    }
  }

  /**
   * withDependencies sends the file first (clients read it as the answer) and
   * then its transitive imports; the protocol lets us skip files this stream
   * has already received, except the one asked for.
   */
  private withDependencies(file: DescFile | undefined, sent: Set<string>, what: string): Answer {
    if (file === undefined) return notFound(what);
    const out: Uint8Array[] = [];
    const visit = (f: DescFile, requested: boolean): void => {
      if (sent.has(f.proto.name) && !requested) return;
      sent.add(f.proto.name);
      out.push(this.encode(f));
      for (const dep of f.dependencies) visit(dep, false);
    };
    visit(file, true);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  private encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.encoded.set(file, bytes);
    }
    return bytes;
  }
}

function errorAnswer(errorCode: Code, errorMessage: string): Answer {
  return { case: "errorResponse", value: { errorCode, errorMessage } };
}

function notFound(what: string): Answer {
  return errorAnswer(Code.NotFound, `${what} not found`);
}

/**
 * registerReflection serves gRPC server reflection (grpc.reflection.v1 and
 * v1alpha) on `router`, describing the services of `files` plus the
 * reflection services themselves, so `buf curl` and grpcurl need no schema.
 * Pass every file whose services the router serves (e.g.
 * file_authpool_v1_auth_pool, file_grpc_health_v1_health); dependencies are
 * found through them.
 */
export function registerReflection(router: ConnectRouter, files: DescFile[]): void {
  const reflectionFiles = [file_grpc_reflection_v1_reflection, file_grpc_reflection_v1alpha_reflection];
  const index = new Index([...files, ...reflectionFiles]);
  // One generator body for both versions: `req` keeps its own version's type,
  // and the answer is structurally valid for either.
  const serve = async function* <Q extends Query>(requests: AsyncIterable<Q>) {
    const sent = new Set<string>();
    for await (const req of requests) {
      yield { validHost: req.host, originalRequest: req, messageResponse: index.answer(req, sent) };
    }
  };
  router.service(ServerReflectionV1, { serverReflectionInfo: serve });
  router.service(ServerReflectionV1alpha, { serverReflectionInfo: serve });
}
