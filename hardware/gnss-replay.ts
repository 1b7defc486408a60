/**
 * When each line of a recorded NMEA log would have arrived from the receiver: a new time of day
 * starts a new epoch, which arrives that much later than the last one. Used by the simulated
 * GNSS and by tests that write a log into a pseudo-terminal at receiver pace.
 */
export interface ReplayLine {
  /** ms after the first line */
  atMs: number;
  /** the line with its CR LF */
  line: string;
}

/** Gaps longer than this (a receiver restarted, a log spliced) are replayed as one second. */
const MAX_GAP_MS = 2000;

export function replaySchedule(log: string): ReplayLine[] {
  const out: ReplayLine[] = [];
  let at = 0;
  let lastTime: number | null = null;
  for (const raw of log.split('\n')) {
    const line = raw.replace(/\r$/, '');
    // GPSD's test logs start with `#` header lines that the receiver never sent.
    if (line === '' || line.startsWith('#')) continue;
    const t = sentenceTimeOfDay(line);
    if (t !== null) {
      if (lastTime !== null && t !== lastTime) {
        const gap = t - lastTime;
        at += gap > 0 && gap <= MAX_GAP_MS ? gap : 1000;
      }
      lastTime = t;
    }
    out.push({ atMs: at, line: `${line}\r\n` });
  }
  return out;
}

function sentenceTimeOfDay(line: string): number | null {
  const fields = line.split(',');
  const id = fields[0]?.slice(3);
  const index = id === 'GLL' ? 5 : id === 'GGA' || id === 'RMC' || id === 'GNS' || id === 'ZDA' ? 1 : -1;
  const match = /^(\d\d)(\d\d)(\d\d(?:\.\d+)?)/.exec(fields[index] ?? '');
  if (!match) return null;
  return Math.round((Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3])) * 1000);
}
