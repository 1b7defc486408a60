/**
 * Stand-ins for libgpiod's gpiomon and gpioset (this machine has no GPIO chip): small shell
 * scripts that behave like the tools on their standard streams. gpiomon prints whatever the test
 * appends to `events-N` (N = how many times it was started) in gpiomon's `-F '%o %e %s %n'`
 * format; gpioset logs its arguments and holds until signalled, as `--mode=signal` does.
 */
import { appendFileSync, chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GpiodStandIn {
  gpiomon: string;
  gpioset: string;
  /** how many times gpiomon was started */
  monRuns(): number;
  /** the arguments of each gpiomon start */
  monArgs(): string[];
  /** pid of the running gpiomon */
  monPid(): number;
  /** appends an edge for the current gpiomon run: physical level at a time in ms since the epoch */
  edge(line: number, level: 0 | 1, atMs: number): void;
  /** every gpioset start, as its argument string */
  setCalls(): string[];
  /** pids of gpioset starts, in order */
  setPids(): number[];
}

export function gpiodStandIn(dir: string): GpiodStandIn {
  const gpiomon = join(dir, 'gpiomon');
  const gpioset = join(dir, 'gpioset');
  writeFileSync(
    gpiomon,
    `#!/bin/sh
echo "$*" >> '${dir}/mon.args'
n=$(( $(cat '${dir}/mon.runs' 2>/dev/null || echo 0) + 1 ))
echo $n > '${dir}/mon.runs'
echo $$ > '${dir}/mon.pid'
touch '${dir}/events-'$n
exec tail -n +1 -f '${dir}/events-'$n
`,
  );
  writeFileSync(
    gpioset,
    `#!/bin/sh
echo "$*" >> '${dir}/set.calls'
echo $$ >> '${dir}/set.pids'
exec sleep 1000
`,
  );
  chmodSync(gpiomon, 0o755);
  chmodSync(gpioset, 0o755);
  const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '');
  const lines = (name: string) => read(name).split('\n').filter(Boolean);
  const monRuns = () => Number(read('mon.runs').trim() || 0);
  return {
    gpiomon,
    gpioset,
    monRuns,
    monArgs: () => lines('mon.args'),
    monPid: () => Number(read('mon.pid').trim()),
    edge(line, level, atMs) {
      const seconds = Math.floor(atMs / 1000);
      const nanos = Math.round((atMs - seconds * 1000) * 1e6);
      appendFileSync(join(dir, `events-${monRuns()}`), `${line} ${level} ${seconds} ${nanos}\n`);
    },
    setCalls: () => lines('set.calls'),
    setPids: () => lines('set.pids').map(Number),
  };
}
