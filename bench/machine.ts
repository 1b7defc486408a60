/**
 * What the machine itself did during a measurement: CPU time the hypervisor stole from this VM.
 * On the shared 2-core machines the benches run on, steal comes in bursts of 10–50 % and explains
 * most of the run-to-run swing; each bench prints it beside its figures.
 */
import { readFileSync } from 'node:fs';

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
