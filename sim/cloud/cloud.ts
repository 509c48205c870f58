// The Developer Center model: version packages, upgrade plans with their strategy, and per-device status.
// Rules from docs/protocol.md §2.5, §4, §7: no plan before the MCU version is set, blacklist beats
// whitelist, a delta only to a device on its source version, nothing once the device reports the target,
// re-push every 10 min inside the push period until confirmed, no push within the rejection period after a
// refusal, the URL re-sent after a download error, Retry Times re-upgrades after a failure.
import type { SimClock, SimTimer } from '../clock.ts';
import { crc, crc32, md5, sha256, type CrcAlgorithm } from './hash.ts';
import {
  otaStatusNames,
  type DeviceEndpoint,
  type OtaStatus,
  type PlanComponentMsg,
  type Transfer,
  type TransferCallbacks,
  type UrlMsg,
} from './link.ts';

export interface CloudOptions {
  /** One-way MQTT latency, protocol ms. */
  latencyMs: number;
  /** Delay between the device's confirmation (or a finished component) and the download URL, protocol ms. */
  urlDelayMs: number;
  /** Delay before the URL is re-sent after a DOWNLOADERROR report, protocol ms. */
  retryDelayMs: number;
  /** Time from the download request to the first bytes (HTTP connect), protocol ms. */
  downloadStartMs: number;
  /** Bytes per protocol second served to the module. */
  downloadRate: number;
  /** Push cadence of "push actively" plans, protocol ms (the console says every 10 minutes). */
  pushIntervalMs: number;
  crcAlgorithm: CrcAlgorithm;
}

export const defaultCloudOptions: CloudOptions = {
  latencyMs: 200,
  urlDelayMs: 1000,
  retryDelayMs: 5000,
  downloadStartMs: 300,
  downloadRate: 100_000,
  pushIntervalMs: 10 * 60_000,
  crcAlgorithm: 'crc32',
};

export interface Package {
  id: string;
  component: string;
  version: string;
  type: 'full' | 'delta';
  sourceVersion: string | undefined;
  data: Buffer;
  size: number;
  md5: string;
  crc32: number;
  /** The value delivered in 10701, by the configured CRC algorithm. */
  crc: number;
  sha256: string;
}

export interface PlanInput {
  components: { component: string; packageId: string }[];
  whitelist?: string[] | undefined;
  blacklist?: string[] | undefined;
  mode?: 'silent' | 'manual' | undefined;
  minBattery?: number | undefined;
  minSignal?: number | undefined;
  pushActively?: boolean | undefined;
  pushPeriodHours?: number | undefined;
  rejectionPeriodMinutes?: number | undefined;
  retryTimes?: number | undefined;
  /** Planned time window, protocol minutes from the plan's creation. */
  startsAfterMinutes?: number | undefined;
  endsAfterMinutes?: number | undefined;
}

export interface Plan {
  id: string;
  components: { component: string; packageId: string }[];
  whitelist: string[] | undefined;
  blacklist: string[];
  mode: 'silent' | 'manual';
  minBattery: number;
  minSignal: number;
  pushActively: boolean;
  pushPeriodHours: number;
  rejectionPeriodMinutes: number;
  retryTimes: number;
  createdAt: number;
  startsAt: number;
  endsAt: number | undefined;
  state: 'active' | 'terminated';
  /** Devices an end user confirmed for a manual plan. */
  userConfirmed: Set<string>;
}

type Phase = 'idle' | 'delivered' | 'confirmed' | 'refused' | 'succeeded' | 'failed';

interface DevicePlan {
  phase: Phase;
  /** Components still to upgrade, in plan order, fixed at delivery. */
  components: string[];
  index: number;
  refusedAt: number | undefined;
  failures: number;
}

interface Device {
  dk: string;
  imei: string;
  endpoint: DeviceEndpoint | undefined;
  mcuVersions: [string, string][];
  status: Map<string, { code: OtaStatus; name: string; at: number }>;
  plans: Map<string, DevicePlan>;
  history: { at: number; component: string; code: OtaStatus; name: string }[];
  /** Every plan delivery (10700s), with the protocol time and whether the device asked for it. */
  deliveries: { at: number; planId: string; requested: boolean; components: string[] }[];
  /** The plan whose 10700s the device received last: a report that names no plan is about this one. */
  lastDelivered: string | undefined;
  pending: Set<SimTimer>;
  pushScheduled: boolean;
}

export class CloudError extends Error {}

export class Cloud {
  private readonly packages = new Map<string, Package>();
  private readonly plans: Plan[] = [];
  private readonly devices = new Map<string, Device>();
  private pushTimer: SimTimer | undefined;
  private nextId = 1;
  private corruptNext = 0;
  private failNextDownloads = 0;

  constructor(
    private readonly clock: SimClock,
    readonly options: CloudOptions = defaultCloudOptions,
    private readonly log: (msg: string) => void = () => {},
  ) {
    if (options.pushIntervalMs > 0) this.pushTimer = clock.every(options.pushIntervalMs, () => this.pushAll());
  }

  close(): void {
    this.pushTimer?.cancel();
    for (const d of this.devices.values()) for (const t of d.pending) t.cancel();
  }

  addPackage(input: { component: string; version: string; type: 'full' | 'delta'; sourceVersion?: string | undefined; data: Buffer }): Package {
    if (input.type === 'delta' && !input.sourceVersion) throw new CloudError('a delta package needs sourceVersion');
    if (input.type === 'full' && input.sourceVersion) throw new CloudError('a full package has no sourceVersion');
    if (input.data.length === 0) throw new CloudError('package data is empty');
    const pkg: Package = {
      id: `pkg-${this.nextId++}`,
      component: input.component,
      version: input.version,
      type: input.type,
      sourceVersion: input.sourceVersion,
      data: input.data,
      size: input.data.length,
      md5: md5(input.data),
      crc32: crc32(input.data),
      crc: crc(this.options.crcAlgorithm, input.data),
      sha256: sha256(input.data),
    };
    this.packages.set(pkg.id, pkg);
    this.log(`cloud: package ${pkg.id} ${pkg.component} ${pkg.type} ${pkg.sourceVersion ?? ''}→${pkg.version}, ${pkg.size} bytes`);
    return pkg;
  }

  listPackages(): Omit<Package, 'data'>[] {
    return [...this.packages.values()].map(({ data: _data, ...rest }) => rest);
  }

  addPlan(input: PlanInput): Plan {
    if (input.components.length === 0) throw new CloudError('a plan needs at least one component');
    const seen = new Set<string>();
    for (const c of input.components) {
      const pkg = this.packages.get(c.packageId);
      if (!pkg) throw new CloudError(`no package ${c.packageId} (known: ${[...this.packages.keys()].join(', ') || 'none'})`);
      if (pkg.component !== c.component) throw new CloudError(`package ${c.packageId} is for component ${pkg.component}, not ${c.component}`);
      if (seen.has(c.component)) throw new CloudError(`component ${c.component} appears twice in the plan`);
      seen.add(c.component);
    }
    if (input.components.length > 20) throw new CloudError('a plan holds at most 20 components (the module drops larger ones)');
    const now = this.clock.now();
    const plan: Plan = {
      id: `plan-${this.nextId++}`,
      components: input.components.map((c) => ({ ...c })),
      whitelist: input.whitelist,
      blacklist: input.blacklist ?? [],
      mode: input.mode ?? 'silent',
      minBattery: input.minBattery ?? 0,
      minSignal: input.minSignal ?? 0,
      pushActively: input.pushActively ?? true,
      pushPeriodHours: input.pushPeriodHours ?? 24,
      rejectionPeriodMinutes: input.rejectionPeriodMinutes ?? 120,
      retryTimes: input.retryTimes ?? 0,
      createdAt: now,
      startsAt: now + (input.startsAfterMinutes ?? 0) * 60_000,
      endsAt: input.endsAfterMinutes === undefined ? undefined : now + input.endsAfterMinutes * 60_000,
      state: 'active',
      userConfirmed: new Set(),
    };
    this.plans.push(plan);
    this.log(`cloud: plan ${plan.id} active: ${plan.components.map((c) => `${c.component}←${c.packageId}`).join(', ')}`);
    // An activated plan with active push goes out at once, then every push interval.
    this.pushAll();
    return plan;
  }

  getPlan(id: string): Plan {
    const plan = this.plans.find((p) => p.id === id);
    if (!plan) throw new CloudError(`no plan ${id}`);
    return plan;
  }

  /** The end-user confirmation a manual plan needs before it is delivered to a device. */
  userConfirm(planId: string, dk: string): void {
    const plan = this.getPlan(planId);
    plan.userConfirmed.add(dk);
    this.pushAll();
  }

  terminatePlan(planId: string): void {
    this.getPlan(planId).state = 'terminated';
  }

  listPlans(): unknown[] {
    return this.plans.map((p) => ({ ...p, userConfirmed: [...p.userConfirmed] }));
  }

  // ---- device side ("MQTT") --------------------------------------------------------------------------

  private device(dk: string, imei = dk): Device {
    let d = this.devices.get(dk);
    if (!d) {
      d = { dk, imei, endpoint: undefined, mcuVersions: [], status: new Map(), plans: new Map(), history: [], deliveries: [], lastDelivered: undefined, pending: new Set(), pushScheduled: false };
      this.devices.set(dk, d);
    }
    return d;
  }

  online(dk: string, imei: string, endpoint: DeviceEndpoint, mcuVersions: [string, string][]): void {
    const d = this.device(dk, imei);
    d.imei = imei;
    d.endpoint = endpoint;
    d.mcuVersions = mcuVersions.map(([c, v]) => [c, v]);
    this.log(`cloud: device ${dk} online`);
    this.schedulePush(d);
  }

  offline(dk: string): void {
    const d = this.devices.get(dk);
    if (!d || !d.endpoint) return;
    d.endpoint = undefined;
    this.log(`cloud: device ${dk} offline`);
  }

  versions(dk: string, mcuVersions: [string, string][]): void {
    this.device(dk).mcuVersions = mcuVersions.map(([c, v]) => [c, v]);
  }

  /** AT+QIOTOTAREQ: the versions travel with the request. */
  request(dk: string, mcuVersions: [string, string][]): void {
    const d = this.device(dk);
    d.mcuVersions = mcuVersions.map(([c, v]) => [c, v]);
    this.later(d, this.options.latencyMs, () => this.pushDevice(d, true));
  }

  /**
   * A status report (§3.4) about the plan the module is working on (`planId`, learnt from the plan or the
   * URL), else about the plan delivered last; never about the oldest plan the device still holds as
   * delivered, which after a termination or a newer delivery is not the one the module confirms.
   */
  status(dk: string, component: string, code: OtaStatus, planId?: string): void {
    const d = this.device(dk);
    const at = this.clock.now();
    d.status.set(component, { code, name: otaStatusNames[code], at });
    d.history.push({ at, component, code, name: otaStatusNames[code] });
    if (d.history.length > 200) d.history.splice(0, d.history.length - 200);
    const entry = this.activePlan(d, component, planId ?? d.lastDelivered);
    if (!entry) return;
    const [plan, dp] = entry;
    // Download and update outcomes only follow a confirmation; from a plan still at 10700 they are stale.
    if ((code === 6 || code === 11 || code === 12) && dp.phase !== 'confirmed') return;
    switch (code) {
      case 2:
        if (dp.phase === 'confirmed') break;
        dp.phase = 'confirmed';
        dp.index = 0;
        this.later(d, this.options.urlDelayMs, () => this.sendUrl(d, plan, dp));
        break;
      case 3:
        dp.phase = 'refused';
        dp.refusedAt = at;
        break;
      case 6:
        // The module gave up on this download attempt; the platform re-issues the URL (§4.1 DOWNLOAD_ERROR).
        this.later(d, this.options.retryDelayMs, () => this.sendUrl(d, plan, dp));
        break;
      case 11:
        dp.index++;
        if (dp.index >= dp.components.length) dp.phase = 'succeeded';
        else this.later(d, this.options.urlDelayMs, () => this.sendUrl(d, plan, dp));
        break;
      case 12:
        dp.failures++;
        dp.phase = dp.failures > plan.retryTimes ? 'failed' : 'idle';
        break;
      default:
        break;
    }
  }

  /** Serves a byte range of a package at the download rate; never starts while a download fault is pending. */
  download(packageId: string, start: number, length: number, cb: TransferCallbacks): Transfer {
    const pkg = this.packages.get(packageId);
    const timers: SimTimer[] = [];
    const cancel = (): void => timers.forEach((t) => t.cancel());
    if (!pkg) return { cancel };
    if (this.failNextDownloads > 0) {
      this.failNextDownloads--;
      this.log(`cloud: download of ${packageId} stalls (fault; ${this.failNextDownloads} more to fail)`);
      return { cancel };
    }
    timers.push(
      this.clock.after(this.options.downloadStartMs, () => {
        cb.started();
        timers.push(
          this.clock.after((length / this.options.downloadRate) * 1000, () => {
            let bytes = Buffer.from(pkg.data.subarray(start, start + length));
            if (this.corruptNext > 0 && bytes.length > 0) {
              this.corruptNext--;
              bytes = Buffer.from(bytes);
              const at = Math.floor(bytes.length / 2);
              bytes[at] = bytes[at]! ^ 0xff;
              this.log(`cloud: corrupted byte ${start + at} of ${packageId} (fault)`);
            }
            cb.done(bytes);
          }),
        );
      }),
    );
    return { cancel };
  }

  // ---- faults ----------------------------------------------------------------------------------------

  corruptNextDownload(count = 1): void {
    this.corruptNext += count;
  }

  failDownloads(count: number): void {
    this.failNextDownloads += count;
  }

  snapshot(): unknown[] {
    return [...this.devices.values()].map((d) => ({
      dk: d.dk,
      imei: d.imei,
      online: d.endpoint !== undefined,
      mcuVersions: Object.fromEntries(d.mcuVersions),
      status: Object.fromEntries(d.status),
      plans: Object.fromEntries([...d.plans].map(([id, dp]) => [id, { ...dp }])),
      history: d.history,
      deliveries: d.deliveries,
      lastDelivered: d.lastDelivered,
    }));
  }

  // ---- internals -------------------------------------------------------------------------------------

  private later(d: Device, ms: number, fn: () => void): void {
    const timer = this.clock.after(ms, () => {
      d.pending.delete(timer);
      fn();
    });
    d.pending.add(timer);
  }

  /** A terminated plan is never active: its late reports are history only, and it blocks nothing. */
  private activePlan(d: Device, component: string, planId: string | undefined): [Plan, DevicePlan] | undefined {
    const plan = this.plans.find((p) => p.id === planId);
    const dp = plan && d.plans.get(plan.id);
    if (!plan || !dp || plan.state !== 'active' || !['delivered', 'confirmed'].includes(dp.phase)) return undefined;
    return dp.components.includes(component) ? [plan, dp] : undefined;
  }

  private sendUrl(d: Device, plan: Plan, dp: DevicePlan): void {
    if (!d.endpoint || dp.phase !== 'confirmed' || plan.state !== 'active') return;
    const component = dp.components[dp.index];
    const ref = plan.components.find((c) => c.component === component);
    const pkg = ref && this.packages.get(ref.packageId);
    if (!pkg) return;
    const msg: UrlMsg = {
      planId: plan.id,
      packageId: pkg.id,
      componentNo: pkg.component,
      targetVersion: pkg.version,
      size: pkg.size,
      md5: pkg.md5,
      crc: pkg.crc,
      sha256: pkg.sha256,
    };
    this.log(`cloud: URL of ${pkg.id} to ${d.dk}`);
    d.endpoint.url(msg);
  }

  private pushAll(): void {
    for (const d of this.devices.values()) if (d.endpoint) this.schedulePush(d);
  }

  /** Several reasons to push in one latency window (online, a new plan, the cadence) make one push. */
  private schedulePush(d: Device): void {
    if (d.pushScheduled) return;
    d.pushScheduled = true;
    this.later(d, this.options.latencyMs, () => {
      d.pushScheduled = false;
      this.pushDevice(d, false);
    });
  }

  private componentsFor(plan: Plan, d: Device): PlanComponentMsg[] {
    const current = new Map(d.mcuVersions);
    const out: PlanComponentMsg[] = [];
    for (const ref of plan.components) {
      const pkg = this.packages.get(ref.packageId)!;
      const cur = current.get(pkg.component);
      if (cur === undefined || cur === pkg.version) continue;
      if (pkg.type === 'delta' && cur !== pkg.sourceVersion) continue;
      out.push({
        componentNo: pkg.component,
        sourceVersion: pkg.type === 'delta' ? pkg.sourceVersion! : '',
        targetVersion: pkg.version,
        batteryLimit: plan.minBattery,
        minSignal: plan.minSignal,
        useSpace: pkg.size,
        componentType: 1,
      });
    }
    return out;
  }

  private eligible(plan: Plan, d: Device, requested: boolean): PlanComponentMsg[] | undefined {
    const now = this.clock.now();
    if (plan.state !== 'active' || now < plan.startsAt || (plan.endsAt !== undefined && now >= plan.endsAt)) return undefined;
    if (!requested && (!plan.pushActively || now >= plan.createdAt + plan.pushPeriodHours * 3_600_000)) return undefined;
    // FAQ 10: nothing is delivered to a device that never set an MCU version.
    if (d.mcuVersions.length === 0) return undefined;
    const ids = [d.dk, d.imei];
    if (plan.blacklist.some((x) => ids.includes(x))) return undefined;
    if (plan.whitelist && !plan.whitelist.some((x) => ids.includes(x))) return undefined;
    if (plan.mode === 'manual' && !plan.userConfirmed.has(d.dk) && !plan.userConfirmed.has(d.imei)) return undefined;
    const dp = d.plans.get(plan.id);
    if (dp) {
      if (dp.phase === 'confirmed' || dp.phase === 'succeeded' || dp.phase === 'failed') return undefined;
      if (dp.phase === 'refused' && !requested && now < (dp.refusedAt ?? 0) + plan.rejectionPeriodMinutes * 60_000) return undefined;
    }
    const components = this.componentsFor(plan, d);
    return components.length > 0 ? components : undefined;
  }

  private pushDevice(d: Device, requested: boolean): void {
    if (!d.endpoint) return;
    // One upgrade at a time: a confirmed plan blocks every other, until it is terminated.
    for (const plan of this.plans) if (plan.state === 'active' && d.plans.get(plan.id)?.phase === 'confirmed') return;
    for (const plan of this.plans) {
      const components = this.eligible(plan, d, requested);
      if (!components) continue;
      const prev = d.plans.get(plan.id);
      d.plans.set(plan.id, {
        phase: 'delivered',
        components: components.map((c) => c.componentNo),
        index: 0,
        refusedAt: prev?.refusedAt,
        failures: prev?.failures ?? 0,
      });
      d.deliveries.push({ at: this.clock.now(), planId: plan.id, requested, components: components.map((c) => c.componentNo) });
      d.lastDelivered = plan.id;
      if (d.deliveries.length > 200) d.deliveries.splice(0, d.deliveries.length - 200);
      this.log(`cloud: plan ${plan.id} to ${d.dk} (${requested ? 'requested' : 'pushed'}): ${components.map((c) => `${c.componentNo} ${c.sourceVersion || '*'}→${c.targetVersion}`).join(', ')}`);
      d.endpoint.plan(plan.id, components);
      return;
    }
  }
}
