// One bounded, event-driven wait for the sim's tests and test benches: a condition looked at now and again
// whenever the thing it watches says something changed, with a deadline that names what was expected.

/**
 * Resolves with `check()`'s first defined result, looked at now and each time one of `waiters` is called
 * (the owner calls every waiter in the set on a change); rejects after `timeoutMs` with `failure()`.
 */
export function waitOn<T>(waiters: Set<() => void>, check: () => T | undefined, timeoutMs: number, failure: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const look = (): void => {
      const v = check();
      if (v === undefined) return;
      done();
      resolve(v);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(failure()));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      waiters.delete(look);
    };
    waiters.add(look);
    look();
  });
}
