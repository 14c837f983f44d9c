/**
 * Teardown is a shutdown as one list: each part of a server registers how to
 * undo itself as it starts, and closing runs the list backwards, so a
 * start-up that fails half-way undoes exactly what it did, and a clean
 * shutdown undoes everything in the reverse order of start. A failing step
 * is reported and the rest still run.
 */
export class Teardown {
  private readonly steps: { name: string; run: () => unknown }[] = [];

  add(name: string, run: () => unknown): void {
    this.steps.push({ name, run });
  }

  async run(onError: (step: string, error: unknown) => void = () => {}): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.run();
      } catch (error) {
        onError(step.name, error);
      }
    }
  }
}
