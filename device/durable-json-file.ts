/**
 * A lowdb adapter for state that must survive a power cut. lowdb's JSONFile (steno) writes a
 * temporary file and renames it over the target but never fsyncs either: after a power cut the
 * rename can be on disk before the data (notably on FAT, which the device's storage may be),
 * leaving an empty or garbage file. Here each write is fsync'd, renamed over the file, and
 * the directory fsync'd (replaceFileDurableAsync), so the file holds the old state or the new one.
 */
import { readFile } from 'node:fs/promises';
import type { Adapter } from 'lowdb';
import { replaceFileDurableAsync } from './fs-durable.ts';

export class DurableJsonFile<T> implements Adapter<T> {
  /** The newest text not yet on disk; a write queued earlier may carry it there first. */
  private latest: string | null = null;
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /** The parsed file, or null when it does not exist. Throws what JSON.parse throws. */
  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    return JSON.parse(text) as T;
  }

  /**
   * Resolves once `data` (or newer data written after it) is on disk. Writes run one at a time;
   * those that pile up meanwhile are written once, as the newest, as steno does.
   */
  write(data: T): Promise<void> {
    this.latest = JSON.stringify(data, null, 2);
    const result = this.queue.then(() => this.flush());
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async flush(): Promise<void> {
    const text = this.latest;
    if (text === null) return;
    this.latest = null;
    try {
      await replaceFileDurableAsync(this.path, text);
    } catch (error) {
      // Not on disk: a write queued behind this one must still try it.
      this.latest ??= text;
      throw error;
    }
  }
}
