// What travels between the module and the Developer Center model: the MQTT messages of the QuecThing OTA
// exchange (docs/protocol.md §3.3, §3.4 TTLV fields), reduced to what the module acts on.

/** One component of a delivered plan: the fields the module prints in `+QIOTEVT: 7,10700,…`. */
export interface PlanComponentMsg {
  componentNo: string;
  /** "" for a full package. */
  sourceVersion: string;
  targetVersion: string;
  batteryLimit: number;
  minSignal: number;
  useSpace: number;
  /** 1 = MCU (SOTA); the model only delivers MCU components. */
  componentType: 0 | 1;
}

/** The download URL and file facts for one component (what 10701 reports). */
export interface UrlMsg {
  planId: string;
  packageId: string;
  componentNo: string;
  targetVersion: string;
  size: number;
  md5: string;
  crc: number;
  sha256: string;
}

/** The cloud side of a device's MQTT session. */
export interface DeviceEndpoint {
  plan(planId: string, components: PlanComponentMsg[]): void;
  url(msg: UrlMsg): void;
}

/** §3.4 status codes the module reports. */
export const otaStatusNames = {
  0: 'NOPLAN',
  1: 'REVICEPLAN',
  2: 'SUBMITOTA',
  3: 'REFUSEDOTA',
  4: 'DOWNLOADSTART',
  5: 'DOWNLOADING',
  6: 'DOWNLOADERROR',
  8: 'DOWNLOADSUCCESS',
  9: 'UPDATING',
  11: 'UPDATESUCCESS',
  12: 'UPDATEERROR',
} as const;
export type OtaStatus = keyof typeof otaStatusNames;

export interface Transfer {
  cancel(): void;
}

export interface TransferCallbacks {
  /** The HTTP exchange started (first bytes arrive). */
  started(): void;
  /** The whole range arrived. */
  done(bytes: Buffer): void;
}
