/**
 * What a fleet bench process measures about itself, so the bench can say where a latency tail is
 * born: its event-loop delay (perf_hooks samples every RESOLUTION_MS; the figures are the delay beyond
 * that period, so an idle loop reads about 0 and a stall shorter than the period is not seen)
 * and its garbage-collection pauses (`gc` performance entries: the main-thread pause of each
 * collection, by kind). Every bench process (gateway, device slices, manager) runs one over the
 * measured window and reports it to bench/fleet.ts.
 */
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export interface ProcessHealth {
  /** event-loop delay over the window, ms */
  loopP50Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  /** GC pauses over the window: how many, their sum and the longest, ms */
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
  /** the kind of the longest pause: scavenge (young generation), mark-compact (full), … */
  gcMaxKind: string;
  /** mark-compact (full) collections only */
  gcMajorCount: number;
  gcMajorMaxMs: number;
  /** at the end of the window: the V8 heap in use, and memory held outside it (Buffers, TLS), MiB */
  heapUsedMiB: number;
  externalMiB: number;
}

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};

const round1 = (x: number) => Math.round(x * 10) / 10;
const RESOLUTION_MS = 5;
/** histogram nanoseconds → ms beyond the sampling period */
const excessMs = (ns: number) => round1(Math.max(0, ns / 1e6 - RESOLUTION_MS));

export class HealthMonitor {
  private readonly loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private observer: PerformanceObserver | undefined;
  private gc = { count: 0, total: 0, max: 0, maxKind: 'none', majorCount: 0, majorMax: 0 };

  start(): void {
    this.loop.reset();
    this.loop.enable();
    this.gc = { count: 0, total: 0, max: 0, maxKind: 'none', majorCount: 0, majorMax: 0 };
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1;
        const g = this.gc;
        g.count++;
        g.total += entry.duration;
        if (entry.duration > g.max) {
          g.max = entry.duration;
          g.maxKind = KINDS[kind] ?? String(kind);
        }
        if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
          g.majorCount++;
          g.majorMax = Math.max(g.majorMax, entry.duration);
        }
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): ProcessHealth {
    this.loop.disable();
    this.observer?.disconnect();
    const g = this.gc;
    return {
      loopP50Ms: excessMs(this.loop.percentile(50)),
      loopP99Ms: excessMs(this.loop.percentile(99)),
      loopMaxMs: excessMs(this.loop.max),
      gcCount: g.count,
      gcTotalMs: round1(g.total),
      gcMaxMs: round1(g.max),
      gcMaxKind: g.maxKind,
      gcMajorCount: g.majorCount,
      gcMajorMaxMs: round1(g.majorMax),
      heapUsedMiB: round1(process.memoryUsage().heapUsed / 1048576),
      externalMiB: round1(process.memoryUsage().external / 1048576),
    };
  }
}

/** The worst of several processes of one role (the device slices): max of each figure, GC summed. */
export function worstOf(all: ProcessHealth[]): ProcessHealth {
  const worst = all.reduce((a, b) => (b.gcMaxMs > a.gcMaxMs ? b : a));
  return {
    loopP50Ms: Math.max(...all.map((h) => h.loopP50Ms)),
    loopP99Ms: Math.max(...all.map((h) => h.loopP99Ms)),
    loopMaxMs: Math.max(...all.map((h) => h.loopMaxMs)),
    gcCount: all.reduce((n, h) => n + h.gcCount, 0),
    gcTotalMs: round1(all.reduce((n, h) => n + h.gcTotalMs, 0)),
    gcMaxMs: worst.gcMaxMs,
    gcMaxKind: worst.gcMaxKind,
    gcMajorCount: all.reduce((n, h) => n + h.gcMajorCount, 0),
    gcMajorMaxMs: Math.max(...all.map((h) => h.gcMajorMaxMs)),
    heapUsedMiB: Math.max(...all.map((h) => h.heapUsedMiB)),
    externalMiB: Math.max(...all.map((h) => h.externalMiB)),
  };
}
