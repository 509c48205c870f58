// A rig whose parent dies (the `npx` that a CI job's timeout killed, the shell of a closed terminal) must not
// go on switching power and flashing unsupervised: it stops as on SIGTERM, through the same handlers, so the
// station reaches its safe state before the lock is freed. Linux tells a process of its parent's death only
// through prctl(PR_SET_PDEATHSIG), which a Node process cannot set on itself (the rig sets it on its own
// helpers with setpriv). What it can see: the kernel re-parents an orphan (to init or a subreaper), so its
// parent id changes. A getppid() every 200 ms is the cheapest way to notice (it is not a wait), and the
// flows' callers ask parentGone() before they claim a result.
const CHECK_MS = 200;

let watchers = 0;
let timer: NodeJS.Timeout | undefined;
let watched: number | undefined;

/**
 * True when a watch is on and the parent it started with is gone: asked where a run would claim a result
 * (a record that passed), so that the half second before the next check cannot let one through.
 */
export function parentGone(): boolean {
  return watched !== undefined && process.ppid !== watched;
}

/**
 * Watches the parent while at least one caller holds a watch; returns the function that lets go. A process
 * that is already an orphan (started detached, by init) has no parent to lose and is never stopped.
 */
export function watchParent(): () => void {
  if (watchers++ === 0) {
    const parent = process.ppid;
    watched = parent;
    timer = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(timer);
      timer = undefined;
      process.stderr.write(`rig: parent process ${parent} is gone; stopping as on SIGTERM\n`);
      process.kill(process.pid, 'SIGTERM');
    }, CHECK_MS);
    // The watch never keeps the process alive on its own.
    timer.unref();
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--watchers === 0) {
      clearInterval(timer);
      timer = undefined;
      watched = undefined;
    }
  };
}
