// Executing a run's faults (faults.ts) on its station, for every flow: the schedule (schedule.ts) says
// when a fault is due, the flow calls `checkpoint()` where it can take one, and the executor switches the
// line, cuts the network or closes the port, waits until the station is usable again and tells the flow what
// changed (a Disturbance) so it can carry on as the device would.
import { RigError } from '../errors.ts';
import { isEvent } from '../quecthing/events.ts';
import type { QuecThing } from '../quecthing/quecthing.ts';
import type { Station } from '../station/station.ts';
import { sleep } from './module.ts';
import type { RunLog } from './run-log.ts';
import type { FaultSchedule, ScheduledFault } from './schedule.ts';

/** Something the flow did to the station (a fault) or saw happen to it, which changes what comes next. */
export class Disturbance extends Error {
  constructor(
    readonly what: { rebooted?: boolean; reopened?: boolean; networkRestored?: boolean },
    readonly cause_: string,
    /** Caused by one of the run's own faults (recorded in `fired`), not by the station on its own. */
    readonly ours = false,
  ) {
    super(`disturbance: ${cause_}`);
  }
}

/** What the executor needs from the flow it serves. */
export interface FaultHost {
  readonly station: Station;
  readonly log: RunLog;
  readonly signal: AbortSignal | undefined;
  /** A module restart this executor caused was seen by the flow's own event cursor too (its RDY is no surprise). */
  rebootAcknowledged(): void;
  /** The AT port was reopened: the flow listens to the new one. */
  reattach(): void;
}

export class FaultExecutor {
  /** A target fault came: the probe must see the target again before it is used, and a read-back redone. */
  targetDisturbed = false;
  /** A network cut with no end: the network is restored when the run ends (restoreNetwork). */
  networkCutUntilEnd = false;

  constructor(
    private readonly host: FaultHost,
    private readonly schedule: FaultSchedule,
  ) {}

  private get qt(): QuecThing {
    return this.host.station.module.qt;
  }

  private cmd(): { timeoutMs: number; signal?: AbortSignal } {
    const T = this.host.station.timeouts;
    return { timeoutMs: T.commandMs + T.marginMs, ...(this.host.signal ? { signal: this.host.signal } : {}) };
  }

  /** Executes the faults that are due; a Disturbance tells the caller what changed. */
  async checkpoint(): Promise<void> {
    if (!this.schedule.pending) return;
    const what: Disturbance['what'] = {};
    const causes: string[] = [];
    for (const f of this.schedule.take()) {
      try {
        await this.execute(f);
      } catch (err) {
        if (!(err instanceof Disturbance)) throw err;
        Object.assign(what, err.what);
        causes.push(err.cause_);
      }
    }
    if (causes.length > 0) throw new Disturbance(what, causes.join('; '), true);
  }

  /** Executes one fault's action; resolves when the station is usable again, or throws a Disturbance. */
  async execute(f: ScheduledFault): Promise<void> {
    const { station, log, signal } = this.host;
    const a = f.fault.action;
    const t = log.now();
    const phase = log.phase;
    const note = (effect: string) => {
      log.noteFired(f.text, t, phase, effect);
      try {
        station.module.at.note(`fault ${f.text}: ${effect}`);
      } catch {
        // A closed port takes no notes; the record has the fault.
      }
    };
    const d = await log.recorder.step(`fault ${f.text}`, async (): Promise<Disturbance | undefined> => {
      switch (a.kind) {
        case 'power-cycle':
        case 'reset': {
          if (a.part === 'target') {
            if (a.kind === 'power-cycle') await station.power.cycle('target', a.offMs, { signal });
            else await station.power.reset('target', a.ms, { signal });
            this.targetDisturbed = true;
            note(`target ${a.kind === 'reset' ? 'reset' : 'power-cycled'}`);
            return undefined;
          }
          const rdy = this.qt.events();
          try {
            if (a.kind === 'power-cycle') await station.power.cycle('module', a.offMs, { signal });
            else await station.power.reset('module', a.ms, { signal });
            let reopened = false;
            if (!station.module.at.isOpen) {
              // A USB module's port vanishes with its supply.
              await this.reopenWhenBack();
              this.host.reattach();
              reopened = true;
            }
            const c = reopened ? this.qt.events() : rdy;
            try {
              await c.next(isEvent('reboot'), { timeoutMs: station.timeouts.bootMs + station.timeouts.marginMs, signal, expected: 'RDY after the module restarted' });
            } finally {
              if (c !== rdy) c.close();
            }
            // The run's cursor saw the same RDY: it is this fault's, not a surprise.
            if (!reopened) this.host.rebootAcknowledged();
          } finally {
            rdy.close();
          }
          note(`module ${a.kind === 'reset' ? 'reset' : 'power-cycled'}, RDY seen`);
          return new Disturbance({ rebooted: true }, `fault ${f.text}`, true);
        }
        case 'network-cut': {
          await this.qt.setFunctionality(4, false, this.cmd());
          if (a.ms === 0) {
            this.networkCutUntilEnd = true;
            note('AT+CFUN=4 until the end of the run');
            return undefined;
          }
          await sleep(a.ms, signal);
          await this.qt.setFunctionality(1, false, this.cmd());
          note(`AT+CFUN=4 for ${a.ms} ms, then AT+CFUN=1`);
          return new Disturbance({ networkRestored: true }, `fault ${f.text}`, true);
        }
        case 'close-port': {
          await station.module.reopen({ signal });
          this.host.reattach();
          note('serial port closed and reopened');
          return new Disturbance({ reopened: true }, `fault ${f.text}`, true);
        }
      }
    });
    if (d) throw d;
  }

  /**
   * Reopens a serial port that vanished with the module's supply. A USB module re-enumerates some time after
   * power-on and nothing tells the rig when, so it tries again with a growing pause, within the boot time.
   */
  private async reopenWhenBack(): Promise<void> {
    const { station, log, signal } = this.host;
    const until = performance.now() + station.timeouts.bootMs + station.timeouts.marginMs;
    for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
      try {
        await station.module.reopen({ signal });
        return;
      } catch (err) {
        if (signal?.aborted || !(err instanceof RigError) || err.kind !== 'infrastructure' || performance.now() + pause > until) throw err;
        log.noteError(err, true);
        await sleep(pause, signal);
      }
    }
  }

  /** After a run whose network cut had no end: AT+CFUN=1, so the station is left usable. */
  async restoreNetwork(): Promise<void> {
    if (!this.networkCutUntilEnd) return;
    const T = this.host.station.timeouts;
    try {
      await this.qt.setFunctionality(1, false, { timeoutMs: T.commandMs + T.marginMs });
    } catch (err) {
      this.host.log.noteError(err, true);
    }
  }
}
