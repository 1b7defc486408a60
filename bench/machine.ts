/**
 * What the machine itself did during a measurement: CPU time the hypervisor stole from this VM.
 * On the shared 2-core machines the benches run on, steal comes in bursts of 10–50 % and explains
 * most of the run-to-run swing; each bench prints it beside its figures. And what a fresh page of
 * the page cache costs: every file a bench writes needs them, and on these VMs their price swings
 * from 0.3 to 14 CPU s per GiB (2026-12-03, within hours).
 */
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface CpuTicks {
  steal: number;
  total: number;
}

/** All CPUs' ticks so far (/proc/stat, first line: user nice system idle iowait irq softirq steal …). */
export function cpuTicks(): CpuTicks {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { steal: fields[7] ?? 0, total: fields.slice(0, 8).reduce((a, b) => a + b, 0) };
}

/** Percent of all CPU time stolen between two readings. */
export function stealPercent(from: CpuTicks, to: CpuTicks): number {
  return (100 * (to.steal - from.steal)) / Math.max(1, to.total - from.total);
}

export interface PageCacheCost {
  /** CPU seconds per GiB to write a new file and fsync it (fresh page-cache pages) */
  fresh: number;
  /** the same for writing it again over the pages it already has */
  cached: number;
}

/**
 * Writes `mib` MiB to a new file in `dir` and fsyncs it, then writes it again over the same pages,
 * and reports this process's CPU time per GiB for each. The file is removed.
 */
export function pageCacheCost(dir: string, mib: number): PageCacheCost {
  const path = join(dir, 'page-cache-probe.bin');
  const block = Buffer.alloc(1024 * 1024, 0x5a);
  const pass = (flags: string) => {
    const before = process.cpuUsage();
    const fd = openSync(path, flags);
    try {
      for (let n = 0; n < mib; n++) writeSync(fd, block, 0, block.length, n * block.length);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const used = process.cpuUsage(before);
    return ((used.user + used.system) / 1e6) * (1024 / mib);
  };
  try {
    return { fresh: pass('w'), cached: pass('r+') };
  } finally {
    rmSync(path, { force: true });
  }
}

/** write(2)-family calls a process has made so far (/proc/PID/io `syscw`: files and sockets alike). */
export function writeCalls(pid: number | 'self' = 'self'): number {
  return Number(/syscw:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
}
