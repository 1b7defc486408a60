/**
 * The gateway's V8 heap setting for streaming uploads.
 *
 * An idle gateway holds about 20 MiB of live JavaScript objects, and V8 sets the limit of its old
 * generation close above that. While an upload streams, V8 then starts marking again right after
 * every major GC: in `npm run bench -- upload --mib 1024` (2026-12-02) the gateway ran 21–99
 * mark-compacts per GiB received (five runs of six 70–99, one every 40 ms), its GC helper threads
 * took about 3.5 CPU seconds of the 6.4–9.5 it spent per GiB, and the upload ran at 0.27–0.42 of a
 * raw TCP copy. With a floor of 128 MiB under the old-generation limit it ran 0 mark-compacts per
 * GiB on the command line.
 *
 * V8 reads the floor only when the process starts (`v8.setFlagsFromString` at run time still left
 * 24–85 mark-compacts per GiB), so it must be on the node command line: `bin/recorder.js` starts
 * `gateway run` again with it when it is missing. The floor only delays the major GCs of a small heap; a gateway serving
 * thousands of devices is past it anyway, and `--max-old-space-size` still bounds the heap.
 */

/** The node flag that puts a floor of 128 MiB under the old-generation limit. */
export const GATEWAY_HEAP_FLAG = '--initial-old-space-size=128';

/** Whether a node command line (`process.execArgv`) already sets the floor. */
export function hasGatewayHeapFlag(execArgv: readonly string[]): boolean {
  return execArgv.some((arg) => arg.startsWith('--initial-old-space-size'));
}
