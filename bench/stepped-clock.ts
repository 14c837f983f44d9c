import type { Clock } from "../src/domain/index.js";

/** SteppedClock is a Clock the bench moves by hand: simulated time for building history. */
export class SteppedClock implements Clock {
  private t: number;

  constructor(start: number) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  set(t: number): void {
    this.t = t;
  }
}
