// The OpenOCD command line for the virtual target (protocol/openocd-sim.md §7), for sim/ tests and docs.
// The rig never imports this: it takes the same arguments from the station's config.
import type { TargetName } from '../target/profiles.ts';

export interface VirtualOpenocdArgsOptions {
  target: TargetName;
  host: string;
  /** TCP port; 0 means host is a UNIX socket path. */
  port: number;
  /** Extra `-c` commands after the target cfg and before init. */
  extra?: readonly string[];
  /** Add `-c init` (default true). */
  init?: boolean;
}

/**
 * Arguments for `openocd` (spawned without a shell). No working area, so OpenOCD never tries to run code
 * on the target (there is no instruction-set emulator); the F4 cfg's reset-start/reset-init handlers call
 * `adapter speed`, which remote_bitbang cannot do after init, so they are emptied; all servers off except
 * Tcl on an ephemeral port, reported as "Listening on port N for tcl connections".
 */
export function virtualOpenocdArgs(o: VirtualOpenocdArgsOptions): string[] {
  const args = [
    '-c', `adapter driver remote_bitbang; remote_bitbang host ${o.host}; remote_bitbang port ${o.port}`,
    '-c', 'set WORKAREASIZE 0',
    '-f', `target/${o.target}.cfg`,
  ];
  if (o.target === 'stm32f4x') {
    args.push('-c', 'stm32f4x.cpu configure -event reset-start {}', '-c', 'stm32f4x.cpu configure -event reset-init {}');
  }
  args.push('-c', 'gdb_port disabled; telnet_port disabled; tcl_port 0');
  for (const c of o.extra ?? []) args.push('-c', c);
  if (o.init ?? true) args.push('-c', 'init');
  return args;
}
