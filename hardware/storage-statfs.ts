/** The evidence volume: total and free space (statfs) and the bytes evidence files take. */
import { lstat, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { RecorderError } from '../protocol/errors.ts';
import type { Storage, StorageReading } from './storage.ts';

export class StatfsStorage implements Storage {
  readonly #dir: string;

  /** `evidenceDir`: the profile's storage.evidenceDir */
  constructor(evidenceDir: string) {
    this.#dir = evidenceDir;
  }

  async read(): Promise<StorageReading> {
    let fs;
    try {
      fs = await statfs(this.#dir, { bigint: true });
    } catch (error) {
      throw new RecorderError(
        'STORAGE_UNAVAILABLE',
        `cannot measure the evidence volume at ${this.#dir}: ${(error as Error).message}; check storage.evidenceDir in the profile`,
        { dir: this.#dir },
      );
    }
    return {
      totalBytes: Number(fs.blocks * fs.bsize),
      // bavail, not bfree: what an unprivileged recorder process can still write.
      freeBytes: Number(fs.bavail * fs.bsize),
      evidenceBytes: await sizeOfTree(this.#dir),
    };
  }
}

/** Sum of regular file sizes under `dir`; symlinks are not followed, vanished files are skipped. */
async function sizeOfTree(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await sizeOfTree(path);
    else if (entry.isFile()) {
      try {
        total += (await lstat(path)).size;
      } catch {
        // deleted between readdir and lstat (a receipted segment removed by the uploader)
      }
    }
  }
  return total;
}
