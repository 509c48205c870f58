// The virtual STM32 behind its debug port: one call starts the target model, the remote_bitbang server
// that the real OpenOCD connects to and, when asked, a Bus Pirate on a pty in front of the same TAP chain.
// sim/main.ts composes it with the module; tests use it directly.
import type { Rails } from '../rails.ts';
import type { TargetName } from '../target/profiles.ts';
import { Stm32Target } from '../target/stm32.ts';
import { DebugPort } from './debug-port.ts';
import { startBusPirateTty, type BusPirateTty } from './buspirate.ts';
import { startRemoteBitbangServer, type RemoteBitbangServer } from './server.ts';

export { Stm32Target } from '../target/stm32.ts';
export { DebugPort } from './debug-port.ts';
export { targetNames, type TargetName } from '../target/profiles.ts';

export interface JtagTargetOptions {
  target: TargetName;
  /** Flash size in KiB; defaults to the part's largest (F103: 512, F407: 1024). */
  flashSizeKiB?: number;
  /** A raw binary loaded at the start of flash (or at flashImageOffset) before the server listens. */
  flashImage?: string | Uint8Array;
  flashImageOffset?: number;
  /** Power and reset rails (targetVdd, targetNrst) the target follows. */
  rails?: Rails;
  /** TCP host (default 127.0.0.1) and port (default 0 = ephemeral). */
  host?: string;
  port?: number;
  /** Listen on a UNIX socket instead (OpenOCD: `remote_bitbang port 0; remote_bitbang host <path>`). */
  socketPath?: string;
  /**
   * Also offer the chip behind a Bus Pirate (OpenOCD's `buspirate` adapter) on a pty made in this
   * directory: a shift-based adapter, one round trip per ~128 scans instead of one per scan.
   */
  busPirateDir?: string;
  log?: (line: string) => void;
}

export interface JtagTargetInfo {
  host: string;
  /** TCP port; 0 when listening on a UNIX socket (host is then its path). */
  port: number;
  target: TargetName;
  /** The Bus Pirate's serial port (`adapter driver buspirate; buspirate port <path>`), when offered. */
  buspirate?: string;
}

export interface JtagTarget {
  /** What sim/main.ts prints as its "jtag" key. */
  readonly info: JtagTargetInfo;
  readonly target: Stm32Target;
  readonly debugPort: DebugPort;
  readonly server: RemoteBitbangServer;
  readonly busPirate: BusPirateTty | undefined;
  /** Target supply on/off (the same as driving rails.targetVdd when rails are attached). */
  setPower(on: boolean): void;
  /** An NRST pulse: a system reset. */
  reset(): void;
  close(): Promise<void>;
}

export async function startJtagTarget(options: JtagTargetOptions): Promise<JtagTarget> {
  const target = new Stm32Target({ target: options.target, flashSizeKiB: options.flashSizeKiB });
  if (options.flashImage !== undefined) {
    if (typeof options.flashImage === 'string') await target.preloadFile(options.flashImage, options.flashImageOffset);
    else target.loadFlash(options.flashImage, options.flashImageOffset);
    // The core loaded SP/PC from the erased vector table at power-on; a real board boots the new image.
    target.reset();
  }
  const debugPort = new DebugPort(target);
  const detachRails = options.rails ? target.attachRails(options.rails) : () => {};
  let server: RemoteBitbangServer;
  try {
    server = await startRemoteBitbangServer({
      debugPort,
      host: options.host,
      port: options.port,
      socketPath: options.socketPath,
      log: options.log,
    });
  } catch (err) {
    detachRails();
    throw err;
  }
  let busPirate: BusPirateTty | undefined;
  if (options.busPirateDir !== undefined) {
    try {
      busPirate = await startBusPirateTty({ debugPort, dir: options.busPirateDir, log: options.log });
    } catch (err) {
      detachRails();
      await server.close();
      throw err;
    }
  }
  const rails = options.rails;
  const info: JtagTargetInfo = { host: server.host, port: server.port, target: options.target };
  if (busPirate) info.buspirate = busPirate.port;
  return {
    info,
    target,
    debugPort,
    server,
    busPirate,
    setPower(on) {
      if (rails) rails.set('targetVdd', on);
      else target.setPower(on);
    },
    reset() {
      if (rails) {
        rails.set('targetNrst', false);
        rails.set('targetNrst', true);
      } else target.reset();
    },
    async close() {
      detachRails();
      await busPirate?.close();
      await server.close();
    },
  };
}
