import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../protocol/journal-entry.ts';
import type { SealedBody } from '../../device/sealing/sealer.ts';
import { makeTsClip, testCenterKeys } from '../helpers/media.ts';
import { sealingRig, sealMeta } from '../helpers/sealing.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';

test("README's auditor recipe decrypts a sealed file with openssl and python3-cryptography alone", async (t) => {
  needPrograms('openssl', 'sha256sum', 'python3');
  if (spawnSync('python3', ['-c', 'import cryptography']).status !== 0) {
    t.fail('this test needs python3-cryptography: apt-get install -y python3-cryptography');
    return;
  }
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /<!-- evidence-recipe:start -->\n```sh\n([\s\S]*?)```\n<!-- evidence-recipe:end -->/.exec(
    readme,
  );
  t.truthy(block, 'README has the evidence recipe block');

  const { spool, evidence, sealer } = await sealingRig(t);
  const clip = makeTsClip(spool, 'seg.ts', 10);
  const plain = readFileSync(clip);
  const { entry, evidencePath } = await sealer.seal(clip, sealMeta());
  const body = entry.body as unknown as SealedBody;

  const work = tempDir(t);
  writeFileSync(join(work, body.evidence.file), readFileSync(evidencePath));
  writeFileSync(
    join(work, 'center.key.pem'),
    testCenterKeys().privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    {
      mode: 0o600,
    },
  );
  const out = execFileSync('bash', ['-euo', 'pipefail', '-c', block![1]!], { cwd: work, encoding: 'utf8' });
  const media = join(work, body.evidence.file.replace(/\.rse$/, ''));
  t.deepEqual(readFileSync(media), plain);
  t.true(out.includes(`${body.evidence.sha256}  ${body.evidence.file}`));
  t.true(out.includes(`${body.sha256}  ${body.evidence.file.replace(/\.rse$/, '')}`));
  t.is(body.sha256, sha256Hex(plain));
  t.truthy(evidence);
});
