/**
 * SHA-256 computed on a worker thread, so the sealer hashes the plaintext on one core while it
 * encrypts and hashes the ciphertext on another: one pass over the data, about the wall time of a
 * single `sha256sum` (issue 3 benchmark goal ≥ 0.7 of sha256sum).
 */
import { Worker } from 'node:worker_threads';

// Plain JavaScript evaluated in the worker: no TypeScript loader needed there.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m.done) parentPort.postMessage({ digest: hash.digest('hex') });
  else {
    hash.update(new Uint8Array(m.buffer, 0, m.length));
    // hand the memory back so the sealer reuses it instead of allocating a new chunk
    parentPort.postMessage({ ack: true, buffer: m.buffer }, [m.buffer]);
  }
});
`;

export interface ParallelSha256Options {
  /** Chunks handed over but not yet hashed before `update` waits. Default 4. */
  maxInFlight?: number;
}

export class ParallelSha256 {
  private readonly worker: Worker;
  private inFlight = 0;
  private readonly maxInFlight: number;
  private waiters: (() => void)[] = [];
  private digestWaiter: ((hex: string) => void) | null = null;
  private failure: Error | null = null;
  private failWaiter: ((error: Error) => void) | null = null;
  /** chunks the worker has finished with, for reuse */
  readonly returned: Buffer[] = [];

  constructor(options: ParallelSha256Options = {}) {
    this.maxInFlight = options.maxInFlight ?? 4;
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.on('message', (m: { ack?: true; buffer?: ArrayBuffer; digest?: string }) => {
      if (m.ack) {
        this.inFlight--;
        if (m.buffer) this.returned.push(Buffer.from(m.buffer));
        this.waiters.shift()?.();
      } else if (m.digest !== undefined) {
        this.digestWaiter?.(m.digest);
      }
    });
    this.worker.on('error', (error) => {
      this.failure = error;
      this.failWaiter?.(error);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /**
   * Hands `chunk` to the worker. Its memory is transferred, not copied: `chunk` must own its whole
   * ArrayBuffer (Buffer.allocUnsafeSlow) and must not be used afterwards.
   */
  async update(chunk: Buffer, length = chunk.length): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.inFlight >= this.maxInFlight) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      if (this.failure) throw this.failure;
    }
    const buffer = chunk.buffer as ArrayBuffer;
    if (chunk.byteOffset !== 0)
      throw new RangeError('ParallelSha256.update needs a buffer that owns its memory');
    this.inFlight++;
    this.worker.postMessage({ buffer, length }, [buffer]);
  }

  /** The hex digest of everything handed over; ends the worker. */
  async digest(): Promise<string> {
    if (this.failure) throw this.failure;
    try {
      return await new Promise<string>((resolve, reject) => {
        this.digestWaiter = resolve;
        this.failWaiter = reject;
        this.worker.postMessage({ done: true });
      });
    } finally {
      await this.worker.terminate();
    }
  }

  /** Ends the worker without a digest (after a failed seal). */
  async abort(): Promise<void> {
    await this.worker.terminate();
  }
}
