// Assembles a station's power and reset lines from config: one FirmataBoard per board entry, shared by its
// lines; each line driven to its initial level and put under the safe-state registry as it opens.
import { ConfigError } from '../errors.ts';
import { powerConfigSchema, type PowerConfigInput } from './config.ts';
import type { FirmataBoard } from './firmata.ts';
import type { PowerLine } from './line.ts';

export interface PowerLines {
  /** By the names used in config ("module-vbat"); each line's own name is "<station>/<name>". */
  readonly lines: ReadonlyMap<string, PowerLine>;
  /** The line, or a ConfigError naming the lines there are. */
  line(name: string): PowerLine;
  /** Every line to its safe level and released, then the boards' ports closed. Safe to call twice. */
  close(): Promise<void>;
}

export interface OpenPowerOptions {
  station: string;
  signal?: AbortSignal;
}

export async function openPowerLines(input: PowerConfigInput, { station, signal }: OpenPowerOptions): Promise<PowerLines> {
  const parsed = powerConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(`${station}: invalid power line config`, {
      station,
      expected: 'lines of kind "gpio" (chip + line, or gpio) or "firmata" (board + pin), boards with a port',
      seen: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    });
  }
  const config = parsed.data;
  const boards = new Map<string, FirmataBoard>();
  const lines = new Map<string, PowerLine>();
  let closing: Promise<void> | undefined;

  const close = (): Promise<void> => {
    closing ??= (async () => {
      const results = await Promise.allSettled([...lines.values()].map((l) => l.close()));
      results.push(...(await Promise.allSettled([...boards.values()].map((b) => b.close()))));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    })();
    return closing;
  };

  try {
    for (const [name, lineConfig] of Object.entries(config.lines)) {
      const lineName = `${station}/${name}`;
      // Each driver and its library (onoff; johnny-five, firmata-io) is loaded by the first line that needs it.
      if (lineConfig.kind === 'gpio') {
        const { OnoffLine } = await import('./onoff.ts');
        lines.set(name, OnoffLine.open(lineConfig, { name: lineName, station }));
        continue;
      }
      let board = boards.get(lineConfig.board);
      if (!board) {
        const { FirmataBoard } = await import('./firmata.ts');
        board = await FirmataBoard.open(config.boards[lineConfig.board]!, { name: lineConfig.board, station, signal });
        boards.set(lineConfig.board, board);
      }
      lines.set(name, await board.line(lineName, lineConfig));
    }
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }

  return {
    lines,
    line: (name) => {
      const l = lines.get(name);
      if (!l) throw new ConfigError(`${station}: no power line "${name}"`, { station, expected: [...lines.keys()].join(', ') || 'no lines configured', seen: name });
      return l;
    },
    close,
  };
}
