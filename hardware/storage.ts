/** Space on the evidence volume (statfs) and how much of it evidence uses. */
export interface StorageReading {
  totalBytes: number;
  freeBytes: number;
  evidenceBytes: number;
}

export interface Storage {
  read(): Promise<StorageReading>;
}
