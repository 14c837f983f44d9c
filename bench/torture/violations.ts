/**
 * Violations collects what a torture run found wrong, logging each as it
 * comes. A broken pool breaks the books at every check from then on: the
 * first `keep` are kept, the rest only counted.
 */
export class Violations {
  readonly list: string[] = [];
  /** All violations found, kept or not. */
  count = 0;
  private readonly log: (line: string) => void;
  private readonly keep: number;

  constructor(log: (line: string) => void, keep = 200) {
    this.log = log;
    this.keep = keep;
  }

  add(text: string): void {
    if (++this.count <= this.keep) {
      this.list.push(text);
      this.log(`VIOLATION ${text}`);
    }
  }

  /** full: no more are kept. */
  full(): boolean {
    return this.count >= this.keep;
  }

  /** noteDropped appends how many were counted but not kept. */
  noteDropped(): void {
    if (this.count > this.list.length) this.list.push(`... and ${this.count - this.list.length} more`);
  }
}
