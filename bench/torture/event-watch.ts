import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Event, EventSchema, SessionEventKind, createAuthPoolClient } from "../../src/client/index.js";
import type { Ledger } from "./ledger.js";

/**
 * EventWatch follows StreamEvents across restarts the way a subscriber
 * should: it resumes each new server from the last sequence it saw. Public
 * sequences are strictly increasing but may skip numbers (bookkeeping
 * events share the sequence and are not streamed), so the checks are: no
 * sequence seen twice, never going backwards, and every event the pool
 * acknowledged (the allocation or release behind an acknowledged call) is
 * there exactly once.
 */
export class EventWatch {
  /** The last sequence seen (0: none yet). */
  lastSeq = 0;
  events = 0;
  /** Streams opened (one per server that got to serve, plus reconnects). */
  streams = 0;
  readonly violations: string[] = [];
  /** Every event seen, by sequence, as JSON: what compareWatches lays side by side across instances. */
  readonly bySequence = new Map<number, string>();
  /** A name for messages (the instance it follows), or "" for the only one. */
  readonly name: string;
  private readonly allocated = new Map<string, number>();
  private readonly released = new Map<string, number>();
  private readonly expired = new Map<string, number>();
  private abort: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(name = "") {
    this.name = name;
  }

  /**
   * follow opens a stream on the server at url from the last sequence seen.
   * `dead` says whether the server was killed: a stream error after that is
   * expected, before it a violation.
   */
  follow(url: string, dead: () => boolean): void {
    const at = this.name === "" ? "" : ` (${this.name})`;
    const abort = new AbortController();
    this.abort = abort;
    this.streams++;
    const client = createAuthPoolClient(url);
    this.running = (async () => {
      try {
        for await (const res of client.streamEvents(
          { afterSequence: BigInt(this.lastSeq) },
          { signal: abort.signal },
        )) {
          if (res.event !== undefined) this.take(res.event);
        }
        if (!abort.signal.aborted && !dead())
          this.violations.push(`the event stream ended while the server was up${at}`);
      } catch (error) {
        if (abort.signal.aborted || dead()) return;
        const e = ConnectError.from(error);
        // Resuming past the newest event means events the stream had
        // already delivered (so they were durable) are gone.
        const lost = e.code === Code.OutOfRange ? " (events already delivered are missing after the restart)" : "";
        this.violations.push(
          `event stream${at} from after_sequence ${this.lastSeq} failed: ${Code[e.code]} ${e.rawMessage}${lost}`,
        );
      }
    })();
  }

  /** stop closes the current stream. */
  async stop(): Promise<void> {
    this.abort?.abort();
    await this.running;
  }

  private take(event: Event): void {
    const seq = Number(event.sequence);
    if (seq <= this.lastSeq) {
      const at = this.name === "" ? "" : ` (${this.name})`;
      this.violations.push(
        seq === this.lastSeq
          ? `event ${seq} delivered twice${at}`
          : `event ${seq} delivered after ${this.lastSeq}${at}: out of order or repeated`,
      );
      return;
    }
    this.lastSeq = seq;
    this.events++;
    this.bySequence.set(seq, toJsonString(EventSchema, event));
    if (event.payload.case !== "session") return;
    const { sessionId, kind } = event.payload.value;
    const map =
      kind === SessionEventKind.ALLOCATED
        ? this.allocated
        : kind === SessionEventKind.RELEASED
          ? this.released
          : this.expired;
    map.set(sessionId, (map.get(sessionId) ?? 0) + 1);
  }

  /**
   * missing compares the session events seen with a quiet ledger: every
   * granted session has exactly one "allocated", every released one exactly
   * one "released", and there is none for a session never granted. Empty
   * when everything matches.
   */
  missing(ledger: Ledger): string[] {
    const problems: string[] = [];
    const ids = new Set([
      ...ledger.sessionIds(),
      ...this.allocated.keys(),
      ...this.released.keys(),
      ...this.expired.keys(),
    ]);
    for (const id of ids) {
      const status = ledger.sessionStatus(id);
      const granted = status === "held" || status === "released";
      const allocated = this.allocated.get(id) ?? 0;
      const released = this.released.get(id) ?? 0;
      if (allocated !== (granted ? 1 : 0)) {
        problems.push(
          `session ${id} (${status ?? "never allocated"}): ${allocated} "allocated" events, expected ${granted ? 1 : 0}`,
        );
      }
      if (released !== (status === "released" ? 1 : 0)) {
        problems.push(
          `session ${id} (${status ?? "never allocated"}): ${released} "released" events, expected ${status === "released" ? 1 : 0}`,
        );
      }
      if ((this.expired.get(id) ?? 0) > 0)
        problems.push(`session ${id} expired (the run keeps sessions far inside their lifetime)`);
    }
    return problems;
  }

  /** caughtUp waits until missing() is empty or timeoutMs passed, and returns what is still missing. */
  async caughtUp(ledger: Ledger, timeoutMs: number): Promise<string[]> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const problems = this.missing(ledger);
      if (problems.length === 0 || performance.now() > deadline) return problems;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/**
 * compareWatches lays the streams of several instances side by side for the
 * sequences after `from` up to `upTo` (every watch must have reached it):
 * each sequence must be on every stream (else one of them has a gap) and
 * carry the same event on each (else two writers gave one number to two
 * events). Returns the problems found, at most `max`.
 */
export function compareWatches(watches: readonly EventWatch[], from: number, upTo: number, max = 20): string[] {
  const problems: string[] = [];
  const seqs = new Set<number>();
  for (const w of watches) for (const seq of w.bySequence.keys()) if (seq > from && seq <= upTo) seqs.add(seq);
  for (const seq of [...seqs].sort((a, b) => a - b)) {
    const seen = watches.map((w) => w.bySequence.get(seq));
    const missing = watches.filter((_, i) => seen[i] === undefined).map((w) => w.name);
    if (missing.length > 0) {
      problems.push(`event ${seq} is missing from the stream of ${missing.join(", ")} (a gap)`);
    } else if (new Set(seen).size > 1) {
      problems.push(
        `event ${seq} differs between instances: ${watches.map((w, i) => `${w.name}: ${seen[i]}`).join(" | ")}`,
      );
    }
    if (problems.length >= max) break;
  }
  return problems;
}
