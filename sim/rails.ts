// The virtual station's power and reset rails. The module and the target listen to them; the Firmata board
// model (and the admin API's power faults) drive them — the same channels a real bench switches.
import { EventEmitter } from 'node:events';

/**
 * Logical rail levels, true = the normal running level:
 * - moduleVbat:   true = module supply on
 * - moduleResetN: true = RESET_N released (false holds the module in reset, i.e. off)
 * - targetVdd:    true = STM32 supply on
 * - targetNrst:   true = NRST released (false holds the core in reset; the rising edge is a core reset)
 */
export type RailName = 'moduleVbat' | 'moduleResetN' | 'targetVdd' | 'targetNrst';
export const railNames: readonly RailName[] = ['moduleVbat', 'moduleResetN', 'targetVdd', 'targetNrst'];

export interface RailsEvents {
  change: [name: RailName, level: boolean];
}

export class Rails extends EventEmitter<RailsEvents> {
  private readonly levels: Record<RailName, boolean> = {
    moduleVbat: true,
    moduleResetN: true,
    targetVdd: true,
    targetNrst: true,
  };

  get(name: RailName): boolean {
    return this.levels[name];
  }

  /** Drives a rail; listeners run synchronously, and only on a real change of level. */
  set(name: RailName, level: boolean): void {
    if (this.levels[name] === level) return;
    this.levels[name] = level;
    this.emit('change', name, level);
  }

  /** The module is powered when both its supply and its reset line are at the running level. */
  modulePowered(): boolean {
    return this.levels.moduleVbat && this.levels.moduleResetN;
  }

  snapshot(): Record<RailName, boolean> {
    return { ...this.levels };
  }
}
