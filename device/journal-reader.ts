/** Reads a journal file and verifies the whole chain, streaming, so a long journal needs little memory. */
import { createReadStream } from 'node:fs';
import { RecorderError } from '../protocol/errors.ts';
import { ChainVerifier, type ChainReport, type ChainVerifierOptions } from '../protocol/journal-chain.ts';

export async function verifyJournalFile(path: string, options: ChainVerifierOptions): Promise<ChainReport> {
  const verifier = new ChainVerifier(options);
  let pending: Buffer[] = [];
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      let start = 0;
      for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, i);
        verifier.push(pending.length ? Buffer.concat([...pending, piece]) : piece);
        pending = [];
        start = i + 1;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RecorderError('FILE_NOT_FOUND', `journal ${path} does not exist`, { path });
    }
    throw error;
  }
  if (pending.length) verifier.push(Buffer.concat(pending), false);
  return verifier.finish();
}
