import { Writable } from "node:stream";

/** TextSink is a stream that keeps what the CLI writes to it, for runCli's stdout and stderr in-process. */
export type TextSink = Writable & { text(): string };

/** textSink makes an empty TextSink. */
export function textSink(): TextSink {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return Object.assign(stream, { text: () => text });
}
