/**
 * Reading sealed evidence: the SHA-256 and size of any file, and streaming decryption with the
 * center's private key. Decrypted bytes are written to a temporary name and renamed only after
 * the GCM tag has verified, so unauthenticated plaintext never appears under the output name.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { RecorderError } from '../../protocol/errors.ts';
import {
  EVIDENCE_TAG_BYTES,
  EvidenceDecipher,
  evidenceHeaderLength,
  parseEvidenceHeader,
} from '../../protocol/evidence-format.ts';

export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export interface DecryptResult {
  sha256: string;
  bytes: number;
}

/**
 * Decrypts `evidencePath` into `outPath` (or only hashes the plaintext when `outPath` is null).
 * Throws EVIDENCE_BAD_FORMAT or EVIDENCE_DECRYPT_FAILED; nothing is left at `outPath` then.
 */
export async function decryptEvidence(
  evidencePath: string,
  centerPrivateKey: KeyObject,
  outPath: string | null,
): Promise<DecryptResult> {
  const input = await open(evidencePath, 'r');
  const tmp = outPath ? `${outPath}.partial` : null;
  let out: FileHandle | null = null;
  try {
    const size = (await input.stat()).size;
    const first = Buffer.alloc(12);
    await input.read(first, 0, 12, 0);
    const headerLength = evidenceHeaderLength(first, evidencePath);
    if (size < headerLength + EVIDENCE_TAG_BYTES) {
      throw new RecorderError('EVIDENCE_BAD_FORMAT', `${evidencePath} is shorter than header and tag`, {
        file: evidencePath,
      });
    }
    const headerBytes = Buffer.alloc(headerLength);
    await input.read(headerBytes, 0, headerLength, 0);
    const header = parseEvidenceHeader(headerBytes, evidencePath);
    const tag = Buffer.alloc(EVIDENCE_TAG_BYTES);
    await input.read(tag, 0, EVIDENCE_TAG_BYTES, size - EVIDENCE_TAG_BYTES);
    const decipher = new EvidenceDecipher(header, tag, centerPrivateKey, evidencePath);
    if (tmp) out = await open(tmp, 'w', 0o600);
    const end = size - EVIDENCE_TAG_BYTES;
    const chunk = Buffer.alloc(1 << 20);
    for (let pos = headerLength; pos < end;) {
      const { bytesRead } = await input.read(chunk, 0, Math.min(chunk.length, end - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const plain = decipher.update(chunk.subarray(0, bytesRead));
      if (out) await out.write(plain);
    }
    const result = decipher.final();
    if (out) {
      await out.sync();
      await out.close();
      out = null;
      await rename(tmp!, outPath!);
    }
    return result;
  } catch (error) {
    await out?.close().catch(() => undefined);
    if (tmp) await unlink(tmp).catch(() => undefined);
    throw error;
  } finally {
    await input.close();
  }
}
