import test from 'ava';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ReadAhead } from '../../device/read-ahead.ts';
import { tempDir } from '../helpers/temp.ts';

test('chunks read through the read-ahead are the file, in order, after jumps back and at its end', async (t) => {
  const dir = tempDir(t);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 40_000 }),
      fc.integer({ min: 256, max: 5_000 }),
      fc.integer({ min: 64, max: 9_000 }),
      // Offsets (as fractions of the file) a resend goes back to, in the order they happen.
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }),
      async (size, blockBytes, chunkBytes, jumps) => {
        const path = join(dir, `f-${size}-${blockBytes}-${chunkBytes}`);
        const data = randomBytes(size);
        writeFileSync(path, data);
        const handle = await open(path, 'r');
        const reader = new ReadAhead(handle, blockBytes);
        const reads = [0, ...jumps.map((j) => Math.floor(j * size))];
        try {
          for (const from of reads) {
            const got: Buffer[] = [];
            for (let position = from; ; position += chunkBytes) {
              const into = Buffer.alloc(chunkBytes);
              const n = await reader.read(position, into);
              got.push(into.subarray(0, n));
              if (n < chunkBytes) break;
            }
            if (!Buffer.concat(got).equals(data.subarray(from))) return false;
          }
          return true;
        } finally {
          await reader.close();
          await handle.close();
        }
      },
    ),
    { numRuns: 150, seed: 20261203 },
  );
  t.pass();
});

test('a block read that fails fails the chunk that needs it, and nothing is left unhandled', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'f');
  writeFileSync(path, randomBytes(10_000));
  const handle = await open(path, 'r');
  const reader = new ReadAhead(handle, 4096);
  const first = Buffer.alloc(4096);
  t.is(await reader.read(0, first), 4096); // the next block is on its way now
  await handle.close(); // as a vanished file would: the next read of the descriptor fails
  await t.throwsAsync(reader.read(8192, Buffer.alloc(1024)), { code: 'EBADF' });
  await reader.close();
});
