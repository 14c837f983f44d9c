import type { Clock } from "../domain/index.js";

/**
 * Scheduler runs background jobs (sweep, rebalance) when the injected clock
 * says they are due. A real-time timer only wakes it up to look; tests move
 * the clock and call runDue() instead of sleeping.
 */
export interface Job {
  name: string;
  everyMs: number;
  run: () => Promise<unknown>;
  /** An earlier moment the job must run at (e.g. a cooldown's reset time), if any. */
  wakeAt?: () => number | undefined;
}

export class Scheduler {
  private readonly clock: Clock;
  private readonly jobs: { job: Job; due: number; running: boolean }[];
  private timer: NodeJS.Timeout | undefined;
  private readonly onError: (job: string, error: unknown) => void;

  constructor(clock: Clock, jobs: Job[], onError: (job: string, error: unknown) => void) {
    this.clock = clock;
    const now = clock.now();
    this.jobs = jobs.map((job) => ({ job, due: now + job.everyMs, running: false }));
    this.onError = onError;
  }

  /** start wakes the scheduler every pollMs of real time. */
  start(pollMs = 1000): void {
    this.timer = setInterval(() => void this.runDue(), pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** runDue runs every job whose time has come (once, however late) and waits for them. */
  async runDue(): Promise<void> {
    const now = this.clock.now();
    await Promise.all(
      this.jobs.map(async (entry) => {
        const wake = entry.job.wakeAt?.();
        const due = wake !== undefined && wake < entry.due ? wake : entry.due;
        if (entry.running || now < due) return;
        entry.running = true;
        entry.due = now + entry.job.everyMs;
        try {
          await entry.job.run();
        } catch (error) {
          this.onError(entry.job.name, error);
        } finally {
          entry.running = false;
        }
      }),
    );
  }
}
