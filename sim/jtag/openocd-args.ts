// The OpenOCD command line for the virtual target (docs/virtual-station.md, OpenOCD §7), for sim/ tests and docs.
// The rig never imports this: it takes the same arguments from the station's config.
import type { TargetName } from '../target/profiles.ts';

export interface VirtualOpenocdArgsOptions {
  target: TargetName;
  /** remote_bitbang: TCP host and port; port 0 means host is a UNIX socket path. */
  host: string;
  port: number;
  /** The Bus Pirate's pty (JtagTargetInfo.buspirate): use it instead of remote_bitbang. */
  buspirate?: string;
  /**
   * SRAM for OpenOCD's flash loaders and CRC routine: default 0 (no routine is ever started: halfword
   * writes and a host-side CRC); `null` keeps the target cfg's own size, so OpenOCD uploads its routines
   * and the virtual core carries out the ones it knows (sim/target/algorithms.ts).
   */
  workAreaSize?: number | null;
  /** Extra `-c` commands after the target cfg and before init. */
  extra?: readonly string[];
  /** Add `-c init` (default true). */
  init?: boolean;
}

/**
 * Arguments for `openocd` (spawned without a shell). The F4 cfg's reset-start/reset-init handlers call
 * `adapter speed`, which neither adapter can do after init, so they are emptied; all servers off except
 * Tcl on an ephemeral port, reported as "Listening on port N for tcl connections".
 */
export function virtualOpenocdArgs(o: VirtualOpenocdArgsOptions): string[] {
  const args =
    o.buspirate === undefined
      ? ['-c', `adapter driver remote_bitbang; remote_bitbang host ${o.host}; remote_bitbang port ${o.port}`]
      : ['-c', `adapter driver buspirate; buspirate port ${o.buspirate}; transport select jtag`];
  const workArea = o.workAreaSize === undefined ? 0 : o.workAreaSize;
  if (workArea !== null) args.push('-c', `set WORKAREASIZE ${workArea}`);
  args.push('-f', `target/${o.target}.cfg`);
  if (o.target === 'stm32f4x') {
    args.push('-c', 'stm32f4x.cpu configure -event reset-start {}', '-c', 'stm32f4x.cpu configure -event reset-init {}');
  }
  args.push('-c', 'gdb_port disabled; telnet_port disabled; tcl_port 0');
  for (const c of o.extra ?? []) args.push('-c', c);
  if (o.init ?? true) args.push('-c', 'init');
  return args;
}
