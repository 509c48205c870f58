export type { PowerLine, SafeStateLine, TimedOptions } from './line.ts';
export { cycle, pulse, LineLeftOffError } from './line.ts';
export * from './config.ts';
export { openPowerLines, type PowerLines, type OpenPowerOptions } from './open.ts';
export { FirmataBoard, FirmataLine } from './firmata.ts';
export { OnoffLine, resolveGpio, listGpioChips, GPIO_SYSFS, type GpioChip, type ResolvedGpio } from './onoff.ts';
export { registerSafeState, protectedLines } from './safe-state.ts';
export { gpioReleaseBehaviour, type GpioReleaseBehaviour } from './gpio-release.ts';
