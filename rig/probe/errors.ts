// The probe's own error: OpenOCD ran a command and said no. Process and socket trouble is an
// InfrastructureError, a flash that differs from its image is a FirmwareError (rig/errors.ts).

import { FirmwareError, ProtocolError } from '../errors.ts';
import type { RigErrorDetails } from '../errors.ts';

/**
 * OpenOCD answered a command with a non-zero `catch` code: the command's text and OpenOCD's code and error
 * text travel with it, so a report shows exactly what was asked and refused.
 */
export class OpenOcdCommandError extends ProtocolError {
  readonly command: string;
  /** The `catch` code: OpenOCD's ERROR_* value (-4 ERROR_FAIL, -107 JTAG device error…) or Jim's 1. */
  readonly code: number;
  /** OpenOCD's error text (the Tcl result of the failed command). */
  readonly text: string;

  constructor(command: string, code: number, text: string, details: RigErrorDetails = {}) {
    super(`OpenOCD refused "${command}" (code ${code})`, {
      expected: 'Tcl code 0',
      seen: `code ${code}: ${JSON.stringify(text.length > 600 ? `${text.slice(0, 600)}…` : text)}`,
      ...details,
    });
    this.command = command;
    this.code = code;
    this.text = text;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), command: this.command, code: this.code, text: this.text };
  }
}

/** One byte where the target's memory and the image disagree. */
export interface ByteDifference {
  address: number;
  expected: number;
  seen: number;
}

/** The outcome of comparing a region of target memory with an image. */
export interface RegionComparison {
  address: number;
  length: number;
  equal: boolean;
  /** How many bytes differ in all. */
  differingBytes: number;
  /** The first differences, lowest address first (at most 16). */
  differences: ByteDifference[];
}

export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

function hex8(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

/** The memory read back from the target is not the image it should hold. */
export class RegionMismatchError extends FirmwareError {
  readonly comparison: RegionComparison;

  constructor(what: string, comparison: RegionComparison, details: RigErrorDetails = {}) {
    const first = comparison.differences[0];
    const end = comparison.address + comparison.length - 1;
    super(`${what}: ${comparison.differingBytes} byte(s) of ${hex32(comparison.address)}..${hex32(end)} differ from the image`, {
      expected: `the ${comparison.length} bytes of the image at ${hex32(comparison.address)}`,
      seen: first
        ? `first difference at ${hex32(first.address)}: ${hex8(first.seen)} instead of ${hex8(first.expected)}` +
          (comparison.differences.length > 1 ? `; also ${comparison.differences.slice(1, 8).map((d) => hex32(d.address)).join(', ')}${comparison.differingBytes > 8 ? ', …' : ''}` : '')
        : 'differences',
      ...details,
    });
    this.comparison = comparison;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), comparison: this.comparison };
  }
}
