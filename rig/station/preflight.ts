// What can be checked with the config alone, before a station is opened: a run that cannot be made as asked
// fails in a second with a config or usage error, not after the lock, the power lines, the AT port, OpenOCD
// and a baseline flash. The flows check the same again on the opened station (what the config says and what
// was opened agree: the virtual station's entry describes its sim's wiring).
import type { StationConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { findExecutable } from '../probe/openocd.ts';
import type { Package } from '../images/package.ts';
import type { Fault } from '../sota/faults.ts';
import type { CloudFault } from '../sota/record.ts';
import { checkFaults, type FaultCapabilities } from '../sota/schedule.ts';
import { API_CLOUD_FAULTS, DeclaredPlanSource } from './plans.ts';

export interface StationCapabilities {
  /** Which power-cycle and reset actions the station has lines for. */
  power: FaultCapabilities;
  /** The cloud faults its plan source can inject. */
  cloudFaults: readonly string[];
  /** Its declared plans, when an operator creates them (no plan API). */
  declared: DeclaredPlanSource | undefined;
  component: string;
  slotSize: number;
}

const ROLE: Record<'cycle' | 'reset', Record<'module' | 'target', 'moduleSupply' | 'moduleReset' | 'targetSupply' | 'targetReset'>> = {
  cycle: { module: 'moduleSupply', target: 'targetSupply' },
  reset: { module: 'moduleReset', target: 'targetReset' },
};

/** A station's capabilities from its config entry. The virtual station has every line and the admin API. */
export function stationCapabilities(name: string, entry: StationConfig): StationCapabilities {
  if (entry.kind === 'virtual') {
    return { power: { can: () => true }, cloudFaults: API_CLOUD_FAULTS, declared: undefined, component: entry.component, slotSize: entry.layout.slotSize };
  }
  const roles = entry.power.roles;
  const plans = entry.plans;
  return {
    power: { can: (action, part) => roles[ROLE[action][part]] !== undefined },
    cloudFaults: plans.kind === 'api' ? API_CLOUD_FAULTS : [],
    declared: plans.kind === 'declared' ? new DeclaredPlanSource(plans.plans, plans.crcAlgorithm, { station: name }) : undefined,
    component: entry.component,
    slotSize: entry.layout.slotSize,
  };
}

/** The OpenOCD binary the station's probe runs must be there: a ConfigError naming the key otherwise. */
export function requireOpenocd(name: string, entry: StationConfig): void {
  const binary = (entry.kind === 'virtual' ? entry.openocd : entry.probe.openocd) ?? 'openocd';
  if (findExecutable(binary) !== null) return;
  throw new ConfigError(`OpenOCD not found: ${binary}`, {
    station: name,
    expected: `an executable at stations.${name}.${entry.kind === 'virtual' ? 'openocd' : 'probe.openocd'} (${binary.includes('/') ? 'that path' : 'on PATH'}; Debian package openocd, installed by npm run setup)`,
    seen: binary.includes('/') ? `no executable ${binary}` : `no ${binary} in PATH ${process.env.PATH ?? ''}`,
  });
}

/**
 * Everything the config alone can tell about an upgrade run: the faults it has lines for, the cloud faults
 * its plan source can inject, a declared plan that delivers the package (unless the run names the plan),
 * the image fitting the slot. A ConfigError naming what is missing. `console`: the run reads an MCU console
 * (dut mode), so console triggers are the flow's to check.
 */
export function checkRunBeforeOpening(
  name: string,
  entry: StationConfig,
  run: { pkg: Package; byDeclaredPlan: boolean; faults: readonly Fault[]; cloudFaults: readonly CloudFault[]; console: boolean },
): void {
  const caps = stationCapabilities(name, entry);
  checkFaults(name, run.faults, caps.power, { available: run.console, why: 'only dut mode reads the MCU console' });
  for (const cf of run.cloudFaults) {
    if (!caps.cloudFaults.includes(cf.kind)) {
      throw new ConfigError(`the plan source cannot inject cloud fault '${cf.kind}'`, {
        station: name,
        expected: caps.cloudFaults.length > 0 ? `one of ${caps.cloudFaults.join(', ')}` : 'a station whose plans come from an API (declared plans have no faults)',
        seen: cf.kind,
      });
    }
  }
  // A package whose plan an operator must have created: one of the declared plans delivers it.
  const spec = { component: caps.component, package: run.pkg };
  if (caps.declared && !run.byDeclaredPlan && !caps.declared.find(spec)) throw caps.declared.notDeclared(spec);
  if (run.pkg.target.size > caps.slotSize) {
    throw new ConfigError(`image ${run.pkg.version} does not fit the slot`, { station: name, expected: `at most ${caps.slotSize} bytes (layout.slotSize)`, seen: `${run.pkg.target.size} bytes` });
  }
}
