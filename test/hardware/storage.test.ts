import test from 'ava';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { StatfsStorage } from '../../hardware/storage-statfs.ts';
import { tempDir } from '../helpers/temp.ts';

test('storage: statfs totals and the bytes of evidence files, nested, without following symlinks', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, '2026', '11'), { recursive: true });
  writeFileSync(join(dir, 'a.seg'), Buffer.alloc(1000));
  writeFileSync(join(dir, '2026', '11', 'b.seg'), Buffer.alloc(2345));
  symlinkSync('/etc', join(dir, 'link'));
  const r = await new StatfsStorage(dir).read();
  t.is(r.evidenceBytes, 3345);
  const fs = await statfs(dir);
  t.is(r.totalBytes, fs.blocks * fs.bsize);
  t.true(r.freeBytes > 0 && r.freeBytes <= r.totalBytes);
  // free space reported as the unprivileged view, within what changed meanwhile
  t.true(Math.abs(r.freeBytes - fs.bavail * fs.bsize) < 64 * 1024 * 1024);
});

test('storage: an empty evidence dir holds 0 bytes; a missing one is STORAGE_UNAVAILABLE', async (t) => {
  const dir = tempDir(t);
  t.is((await new StatfsStorage(dir).read()).evidenceBytes, 0);
  await t.throwsAsync(new StatfsStorage(join(dir, 'missing')).read(), { message: /STORAGE_UNAVAILABLE/ });
});
