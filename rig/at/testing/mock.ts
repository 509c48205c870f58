// A scripted module behind @serialport/binding-mock. The mock has no hook for what the rig writes, so the
// peer wraps the opened binding's write; pieces are emitted one per macrotask, so the stream delivers
// them as separate reads and the framer sees the fragmentation.
import { SerialPortMock } from 'serialport';
import { ScriptedPeer, seededRandom } from './peer.ts';
import type { Script } from './peer.ts';

let counter = 0;

export interface MockModule {
  serial: SerialPortMock;
  peer: ScriptedPeer;
}

export function createMockModule(opts: { script?: Script; seed?: number; fragmented?: boolean } = {}): MockModule {
  const path = `/dev/mock-module-${process.pid}-${++counter}`;
  SerialPortMock.binding.createPort(path, { echo: false, record: false });
  const serial = new SerialPortMock({ path, baudRate: 115200, autoOpen: false });
  const random = opts.fragmented === false ? undefined : seededRandom(opts.seed ?? 1);
  const peer = new ScriptedPeer(
    async (piece) => {
      if (!serial.isOpen) return;
      serial.port!.emitData(piece);
      await new Promise((r) => setImmediate(r));
    },
    opts.script,
    random,
  );
  serial.on('open', () => {
    const binding = serial.port!;
    const write = binding.write.bind(binding);
    binding.write = async (buffer: Buffer) => {
      await write(buffer);
      peer.fromRig(Buffer.from(buffer));
    };
  });
  return { serial, peer };
}
