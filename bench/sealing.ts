/**
 * Sealing (hash + encrypt + journal) of a 1 GiB file against `sha256sum` of the same file, in the
 * same run (issue 3: goal ≥ 0.7). Input and evidence live in RAM (/dev/shm) so the figure is the
 * sealing pipeline's own cost, not the disk's. BENCH_SEALING_MIB changes the size.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  openSync,
  closeSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalWriter } from '../device/journal-writer.ts';
import { Sealer } from '../device/sealing/sealer.ts';
import type { BenchRow } from './run.ts';

const MiB = 1024 * 1024;

export async function bench(): Promise<BenchRow[]> {
  const mib = Number(process.env.BENCH_SEALING_MIB ?? 1024);
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'bench-sealing-'));
  try {
    const master = join(dir, 'master.ts');
    const block = randomBytes(16 * MiB);
    const fd = openSync(master, 'w');
    for (let done = 0; done < mib * MiB; done += block.length)
      writeSync(fd, block, 0, Math.min(block.length, mib * MiB - done));
    closeSync(fd);

    const sha256sum = () => {
      const t0 = process.hrtime.bigint();
      execFileSync('sha256sum', [master], { stdio: 'ignore' });
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };

    // A second baseline: OpenSSL's SHA-256 (SHA-NI where the CPU has it), what node:crypto uses.
    const opensslDgst = () => {
      const t0 = process.hrtime.bigint();
      execFileSync('openssl', ['dgst', '-sha256', master], { stdio: 'ignore' });
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };

    const center = generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey;
    const device = generateKeyPairSync('ed25519').privateKey;
    mkdirSync(join(dir, 'evidence'));
    mkdirSync(join(dir, 'spool'));
    const journal = await JournalWriter.open({
      path: join(dir, 'journal.jsonl'),
      device: 'BENCH',
      privateKey: device,
    });
    const seal = async (parallelHashMinBytes: number, n: number) => {
      const spool = join(dir, 'spool', `seg-${n}.ts`);
      copyFileSync(master, spool);
      const sealer = new Sealer({
        evidenceDir: join(dir, 'evidence'),
        journal,
        centerPublicKey: center,
        parallelHashMinBytes,
      });
      const t0 = process.hrtime.bigint();
      const { evidencePath } = await sealer.seal(spool, {
        event: 'BENCH',
        segment: n,
        reason: 'recording',
        start: new Date(),
        end: new Date(),
        runningStartMs: 0,
        runningEndMs: 0,
        officer: 'BENCH',
        fixes: [],
        mediaType: 'video/mp2t',
      });
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      rmSync(evidencePath, { force: true });
      return seconds;
    };

    // Best of two each, interleaved, so a burst of load from elsewhere hits both sides alike.
    const baseline = Math.min(sha256sum(), sha256sum());
    const sealed = Math.min(await seal(8 * MiB, 0), await seal(8 * MiB, 1));
    const baseline2 = sha256sum();
    const single = await seal(Number.POSITIVE_INFINITY, 2);
    const openssl = Math.min(opensslDgst(), opensslDgst());
    await journal.close();
    const best = Math.min(baseline, baseline2);
    const rate = (s: number) => `${(mib / s).toFixed(0)} MiB/s`;
    return [
      {
        what: `seal ${mib} MiB (SHA-256 + AES-256-GCM + ciphertext SHA-256 + journal), hash on a worker thread`,
        figure: `${sealed.toFixed(2)} s (${rate(sealed)})`,
        baseline: `sha256sum ${best.toFixed(2)} s (${rate(best)})`,
        ratio: best / sealed,
        goal: '≥ 0.7',
      },
      {
        what: `seal ${mib} MiB against openssl dgst -sha256 (SHA-NI) instead`,
        figure: `${sealed.toFixed(2)} s`,
        baseline: `openssl dgst ${openssl.toFixed(2)} s (${rate(openssl)})`,
        ratio: openssl / sealed,
      },
      {
        what: `seal ${mib} MiB, everything on the main thread (for comparison)`,
        figure: `${single.toFixed(2)} s (${rate(single)})`,
        baseline: `sha256sum ${best.toFixed(2)} s`,
        ratio: best / single,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
