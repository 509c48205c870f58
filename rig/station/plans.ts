// Plan sources. Where Developer Center has an API for the rig (the virtual station's admin API), the rig
// uploads the package and creates the plan itself; where it has none (the real console: there is no public
// API for plans), an operator creates the plan by hand, the config declares it, and the rig only checks
// that the upgrade it is about to test is one of the declared plans and what 10700/10701 must then say.
import http from 'node:http';
import { ConfigError, InfrastructureError } from '../errors.ts';
import { DEFAULT_CRC_ALGORITHM, crc32, crcAlgorithmsMatching } from '../images/crc.ts';
import type { DeclaredPlan, PlansConfig } from '../config/schema.ts';
import type { ExpectedPlan, PlanSource, PreparedPlan, UpgradeSpec } from './station.ts';

export interface PlanSourceOptions {
  station: string;
  /** Bound on one admin API request. */
  requestTimeoutMs?: number;
}

export function openPlanSource(config: PlansConfig, opts: PlanSourceOptions): PlanSource {
  return config.kind === 'api' ? new ApiPlanSource(config.url, opts) : new DeclaredPlanSource(config.plans, config.crcAlgorithm, opts);
}

interface PackageAnswer {
  id: string;
  size: number;
  md5: string;
  crc: number;
  sha256: string;
}

/**
 * Cloud-side faults the admin API injects (its POST /faults kinds that act on the cloud or the radio link).
 * Power faults are not here: they go through the station's power lines, the channel hardware has too.
 */
export const API_CLOUD_FAULTS = ['corrupt-next-download', 'download-error', 'network-down', 'network-up', 'drop-uart-bytes'] as const;

export class ApiPlanSource implements PlanSource {
  readonly kind = 'api' as const;
  readonly cloudFaults: readonly string[] = API_CLOUD_FAULTS;
  private readonly created: string[] = [];
  private readonly station: string;
  private readonly requestTimeoutMs: number;

  constructor(
    readonly url: string,
    opts: PlanSourceOptions,
  ) {
    this.station = opts.station;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  }

  private async request<T>(method: 'GET' | 'POST', route: string, body: unknown, signal: AbortSignal | undefined, what: string): Promise<T> {
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    const url = new URL(route, this.url);
    let res: { status: number; text: string };
    try {
      res = await httpRequest(url, method, body === undefined ? undefined : JSON.stringify(body), signal ? AbortSignal.any([signal, timeout]) : timeout);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const seen = timeout.aborted ? `no answer within ${this.requestTimeoutMs} ms` : signal?.aborted ? 'aborted' : `${(err as Error).message}${code && !(err as Error).message.includes(code) ? ` (${code})` : ''}`;
      throw new InfrastructureError(`plan API: ${what} failed (${method} ${url.href})`, { station: this.station, expected: 'an answer from the plan API', seen, cause: err });
    }
    if (res.status < 200 || res.status > 299) {
      throw new InfrastructureError(`plan API: ${what} refused (${method} ${url.href})`, { station: this.station, expected: '2xx', seen: `${res.status} ${res.text.slice(0, 300)}` });
    }
    try {
      return JSON.parse(res.text) as T;
    } catch {
      throw new InfrastructureError(`plan API: ${what} answered something that is not JSON`, { station: this.station, expected: 'JSON', seen: res.text.slice(0, 200) });
    }
  }

  async prepare(spec: UpgradeSpec, options: { signal?: AbortSignal } = {}): Promise<PreparedPlan> {
    const pkg = spec.package;
    const uploaded = await this.request<PackageAnswer>(
      'POST',
      '/packages',
      {
        component: spec.component,
        version: pkg.version,
        type: pkg.type,
        ...(pkg.type === 'delta' ? { sourceVersion: pkg.sourceVersion } : {}),
        data: Buffer.from(pkg.bytes).toString('base64'),
      },
      options.signal,
      `uploading package ${pkg.name}`,
    );
    if (uploaded.size !== pkg.size || uploaded.sha256 !== pkg.sha256) {
      throw new InfrastructureError(`plan API: package ${pkg.name} arrived damaged`, {
        station: this.station,
        expected: `${pkg.size} bytes, sha256 ${pkg.sha256}`,
        seen: `${uploaded.size} bytes, sha256 ${uploaded.sha256}`,
      });
    }
    const minBattery = spec.minBattery ?? 0;
    const minSignal = spec.minSignal ?? 0;
    const plan = await this.request<{ id: string }>(
      'POST',
      '/plans',
      {
        components: [{ component: spec.component, packageId: uploaded.id }],
        minBattery,
        minSignal,
        pushActively: spec.pushActively ?? false,
        ...(spec.whitelist ? { whitelist: spec.whitelist } : {}),
        ...(spec.blacklist ? { blacklist: spec.blacklist } : {}),
        ...(spec.rejectionPeriodMinutes !== undefined ? { rejectionPeriodMinutes: spec.rejectionPeriodMinutes } : {}),
      },
      options.signal,
      `creating a plan for ${pkg.name}`,
    );
    this.created.push(plan.id);
    // The API answers with the CRC its cloud computed; the algorithm behind it is what 10701 will use too.
    const crcAlgorithm = crc32(pkg.bytes) >>> 0 === uploaded.crc >>> 0 ? DEFAULT_CRC_ALGORITHM : crcAlgorithmsMatching(pkg.bytes, uploaded.crc)[0];
    return {
      id: plan.id,
      expected: {
        component: spec.component,
        sourceVersion: pkg.sourceVersion ?? '',
        targetVersion: pkg.version,
        size: uploaded.size,
        md5: uploaded.md5,
        crc: uploaded.crc,
        ...(crcAlgorithm ? { crcAlgorithm } : {}),
        sha256: uploaded.sha256,
        minBattery,
        minSignal,
      },
    };
  }

  async clear(options: { signal?: AbortSignal } = {}): Promise<void> {
    const ids = this.created.splice(0);
    const errors: unknown[] = [];
    for (const id of ids) {
      try {
        await this.request('POST', `/plans/${encodeURIComponent(id)}/terminate`, {}, options.signal, `terminating plan ${id}`);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }

  async injectCloudFault(kind: string, params: Record<string, unknown> = {}): Promise<void> {
    if (!this.cloudFaults.includes(kind)) {
      throw new ConfigError(`plan API: no cloud fault "${kind}"`, { station: this.station, expected: this.cloudFaults.join(', '), seen: kind });
    }
    await this.request('POST', '/faults', { ...params, kind }, undefined, `injecting cloud fault ${kind}`);
  }
}

function describeDeclared(p: DeclaredPlan): string {
  const pkg = typeof p.package === 'string' ? p.package : p.package.file;
  return `"${p.name}" (${p.component ?? 'any component'} ${p.sourceVersion || 'full'} → ${p.targetVersion}, ${pkg}, battery ≥ ${p.minBattery}, signal ≥ ${p.minSignal})`;
}

export class DeclaredPlanSource implements PlanSource {
  readonly kind = 'declared' as const;
  readonly cloudFaults: readonly string[] = [];
  private readonly station: string;

  constructor(
    readonly plans: readonly DeclaredPlan[],
    readonly crcAlgorithm: string,
    opts: PlanSourceOptions,
  ) {
    this.station = opts.station;
  }

  /** The declared plan that delivers `spec`, or undefined. */
  find(spec: UpgradeSpec): DeclaredPlan | undefined {
    const pkg = spec.package;
    return this.plans.find(
      (p) =>
        (p.component ?? spec.component) === spec.component &&
        p.targetVersion === pkg.version &&
        p.sourceVersion === (pkg.sourceVersion ?? '') &&
        p.minBattery === (spec.minBattery ?? 0) &&
        p.minSignal === (spec.minSignal ?? 0) &&
        (typeof p.package === 'string' ? p.package === pkg.name : p.package.sha256 === pkg.sha256 && (p.package.md5 === undefined || p.package.md5 === pkg.md5)),
    );
  }

  /** The config error for a spec no declared plan delivers: what to declare, and what is declared. */
  notDeclared(spec: UpgradeSpec): ConfigError {
    const pkg = spec.package;
    return new ConfigError(`no declared plan delivers ${pkg.toString()} to component ${spec.component}`, {
      station: this.station,
      expected: `a plan created in Developer Center and declared under plans.plans: package ${pkg.name} (sha256 ${pkg.sha256}), ${pkg.sourceVersion ?? 'full'} → ${pkg.version}, battery ≥ ${spec.minBattery ?? 0}, signal ≥ ${spec.minSignal ?? 0}`,
      seen: this.plans.length === 0 ? 'no plans declared' : this.plans.map(describeDeclared).join('; '),
    });
  }

  prepare(spec: UpgradeSpec): Promise<PreparedPlan> {
    const pkg = spec.package;
    const plan = this.find(spec);
    if (!plan) return Promise.reject(this.notDeclared(spec));
    const expected: ExpectedPlan = {
      component: spec.component,
      sourceVersion: pkg.sourceVersion ?? '',
      targetVersion: pkg.version,
      size: pkg.size,
      md5: pkg.md5,
      crc: pkg.crc(this.crcAlgorithm),
      crcAlgorithm: this.crcAlgorithm,
      sha256: pkg.sha256,
      minBattery: plan.minBattery,
      minSignal: plan.minSignal,
    };
    return Promise.resolve({ id: plan.name, expected });
  }

  clear(): Promise<void> {
    return Promise.resolve();
  }

  injectCloudFault(kind: string): Promise<void> {
    return Promise.reject(
      new ConfigError(`cloud fault "${kind}" is not available: Developer Center has no API for faults`, { station: this.station, expected: 'a station whose plans come from an API', seen: 'declared plans' }),
    );
  }
}

/**
 * One JSON request with node:http (https through node:https, loaded when a URL asks for it). Not fetch:
 * undici's bundle and its WebAssembly parser cost a rig process ~24 MB of RSS for a handful of requests.
 */
async function httpRequest(url: URL, method: string, body: string | undefined, signal: AbortSignal): Promise<{ status: number; text: string }> {
  const transport = url.protocol === 'https:' ? (await import('node:https')).default : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, { method, signal, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
