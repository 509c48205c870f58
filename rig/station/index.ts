// rig/station — a Station (station.ts) assembled from config.
//
//   const station = await openStation('virtual');      // or 'bench-2' from rig.config.ts
//   await station.module.qt.at();                      // the module's AT port and QuecThing layer
//   await station.probe.examine();                     // OpenOCD
//   await station.power.cycle('module', 2000);         // the line with role moduleSupply
//   const plan = await station.plans.prepare({ component: station.component, package: pkg });
//   await station.close();                             // safe state; also on SIGINT/SIGTERM
export type * from './station.ts';
export { openStation, type OpenStationOptions, type OpenedStation, type OpenedModule } from './open.ts';
export { lockStation, defaultLockDir, type LockOwner, type StationLock } from './lock.ts';
export { ApiPlanSource, DeclaredPlanSource, openPlanSource, API_CLOUD_FAULTS } from './plans.ts';
export { DEFAULT_PROTOCOL_TIMEOUTS, resolveTimeouts } from './timeouts.ts';
