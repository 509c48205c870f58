// A minimal typed event emitter: `on` returns the function that unsubscribes, and a listener that throws
// cannot break the port that is delivering to it (the error is reported as a process warning).

export type Listener<A extends unknown[]> = (...args: A) => void;

export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  private readonly listeners: { [K in keyof E]?: Set<Listener<E[K]>> } = {};

  on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    const set = (this.listeners[event] ??= new Set());
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const set = this.listeners[event];
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        process.emitWarning(`listener for "${String(event)}" threw: ${err instanceof Error ? err.stack : String(err)}`);
      }
    }
  }
}
