// A rig that crashes or is stopped must not leave a module unpowered or a target held in reset. Every open
// line registers here; its safe level is driven on close, on an uncaught exception, on SIGINT/SIGTERM/
// SIGHUP and at process exit.
//
// How this composes with other cleanup in the same process:
// - crashes go through `uncaughtExceptionMonitor`, which observes without handling: Node still prints the
//   error and exits with code 1. Only synchronous work can run there, hence applySafeStateSync().
// - on a signal, the safe levels are driven synchronously first (so another handler that exits at once
//   cannot beat them), then the lines are closed (bounded). Then this handler removes itself and, if no
//   other listener for that signal is left, re-raises it, so the process ends "killed by SIGTERM" as
//   it would have without us. A listener that stays registered owns the exit; handlers written the same
//   way as this one compose: the last to finish re-raises.
import type { SafeStateLine } from './line.ts';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type HandledSignal = (typeof SIGNALS)[number];

/** Upper bound for closing lines (releasing GPIOs, closing serial ports) after a signal. */
const SIGNAL_CLOSE_BOUND_MS = 3000;

const lines = new Set<SafeStateLine>();
let installed = false;
const signalHandlers = new Map<HandledSignal, () => void>();

function report(line: SafeStateLine, err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`power: could not drive ${line.name} to its safe level (${line.safe ? 'on' : 'off'}): ${msg}\n`);
}

function applyAllSync(): void {
  for (const line of lines) {
    try {
      line.applySafeStateSync();
    } catch (err) {
      report(line, err);
    }
  }
}

const onCrash = (): void => applyAllSync();
const onExit = (): void => applyAllSync();

async function closeAllBounded(): Promise<void> {
  const closing = Promise.allSettled([...lines].map((l) => l.close()));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closing, new Promise<void>((resolve) => (timer = setTimeout(resolve, SIGNAL_CLOSE_BOUND_MS)))]);
  clearTimeout(timer);
}

function makeSignalHandler(signal: HandledSignal): () => void {
  let running = false;
  const handler = (): void => {
    if (running) return;
    running = true;
    applyAllSync();
    void closeAllBounded().finally(() => {
      process.removeListener(signal, handler);
      signalHandlers.delete(signal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  return handler;
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('uncaughtExceptionMonitor', onCrash);
  process.on('exit', onExit);
  for (const signal of SIGNALS) {
    const handler = makeSignalHandler(signal);
    signalHandlers.set(signal, handler);
    process.on(signal, handler);
  }
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.removeListener('uncaughtExceptionMonitor', onCrash);
  process.removeListener('exit', onExit);
  for (const [signal, handler] of signalHandlers) process.removeListener(signal, handler);
  signalHandlers.clear();
}

/**
 * Puts a line under the registry's protection until the returned function is called (by the line's
 * close()). Handlers are installed with the first line and removed with the last, so a process without
 * open lines keeps Node's default signal behaviour untouched.
 */
export function registerSafeState(line: SafeStateLine): () => void {
  lines.add(line);
  install();
  return () => {
    lines.delete(line);
    if (lines.size === 0) uninstall();
  };
}

/** Lines currently protected (for diagnostics). */
export function protectedLines(): string[] {
  return [...lines].map((l) => l.name);
}
