import http from "node:http";
import type { AddressInfo } from "node:net";

/** Received is one request as the receiver saw it, with the status it answered. */
export interface Received {
  /** The request's path and query. */
  path: string;
  id: string;
  signature: string | undefined;
  timestamp: string | undefined;
  userAgent: string | undefined;
  body: string;
  status: number;
  /** When it arrived (wall clock, ms): for pauses that are real time. */
  at: number;
}

/** WebhookBody is what the webhook channel posts. */
export interface WebhookBody {
  type: string;
  sequence: string;
  event: Record<string, unknown>;
}

export type Answer = number | "hang" | { status: number; body?: string; headers?: Record<string, string> };

/** Receiver is a real HTTP endpoint whose answers a test scripts, with event-driven waits. */
export class Receiver {
  readonly requests: Received[] = [];
  /** hanging counts requests currently held open without an answer. */
  hanging = 0;
  answer: (n: number, body: string) => Answer = () => 200;
  private waiters: (() => void)[] = [];
  private readonly server: http.Server;

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const answer = this.answer(this.requests.length, body);
        if (answer === "hang") {
          this.hanging++;
          req.socket.once("close", () => this.hanging--);
          this.notify();
          return;
        }
        const a = typeof answer === "number" ? { status: answer } : answer;
        this.requests.push({
          path: req.url ?? "",
          id: String(req.headers["x-authpool-event-id"]),
          signature: req.headers["x-authpool-signature"] as string | undefined,
          timestamp: req.headers["x-authpool-timestamp"] as string | undefined,
          userAgent: req.headers["user-agent"],
          body,
          status: a.status,
          at: Date.now(),
        });
        res.writeHead(a.status, { "content-type": "text/plain", ...a.headers });
        res.end(a.body ?? "");
        this.notify();
      });
    });
  }

  /** listen starts on a free port of 127.0.0.1 and returns the URL to post to. */
  async listen(path = "/hook"): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** delivered is the bodies answered with a 2xx, parsed (a webhook's shape unless told otherwise). */
  delivered<T = WebhookBody>(): T[] {
    return this.requests.filter((r) => r.status < 300).map((r) => JSON.parse(r.body) as T);
  }

  /** until waits (no polling) for a condition on what was received. */
  async until(cond: () => boolean): Promise<void> {
    while (!cond()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
