import type { Clock } from "../../src/domain/index.js";

/** ManualClock is a Clock tests move by hand. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: number | string) {
    this.t = typeof start === "string" ? Date.parse(start) : start;
  }
  now(): number {
    return this.t;
  }
  set(t: number | string): void {
    this.t = typeof t === "string" ? Date.parse(t) : t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
