/** Shared set-up for sealing tests: a journal, a state store and a sealer in a temp dir. */
import type { ExecutionContext } from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { JournalWriter } from '../../device/journal-writer.ts';
import { Sealer, type SealerOptions, type SealMeta } from '../../device/sealing/sealer.ts';
import { StateStore } from '../../device/state-store.ts';
import { testCenterKeys } from './media.ts';
import { tempDir } from './temp.ts';

export const deviceKeys = generateKeyPairSync('ed25519');

export function sealMeta(over: Partial<SealMeta> = {}): SealMeta {
  return {
    event: 'EV-20261122T100000Z',
    segment: 0,
    reason: 'recording',
    start: new Date('2026-11-22T10:00:00.000Z'),
    end: new Date('2026-11-22T10:00:10.000Z'),
    runningStartMs: 0,
    runningEndMs: 10_000,
    officer: 'OF-0042',
    fixes: [],
    mediaType: 'video/mp2t',
    ...over,
  };
}

export interface SealingRig {
  dir: string;
  spool: string;
  evidence: string;
  journal: JournalWriter;
  state: StateStore;
  sealer: Sealer;
}

export async function sealingRig(
  t: ExecutionContext,
  options: Partial<SealerOptions> & { dir?: string; evidence?: string } = {},
): Promise<SealingRig> {
  const dir = options.dir ?? tempDir(t);
  const spool = join(dir, 'spool');
  const evidence = options.evidence ?? join(dir, 'evidence');
  mkdirSync(spool, { recursive: true });
  mkdirSync(evidence, { recursive: true });
  const journal = await JournalWriter.open({
    path: join(dir, 'journal.jsonl'),
    device: 'HN-CS-0001',
    privateKey: deviceKeys.privateKey,
  });
  t.teardown(() => journal.close());
  const state = await StateStore.open(join(dir, 'state.json'));
  const sealer = new Sealer({
    evidenceDir: evidence,
    journal,
    centerPublicKey: testCenterKeys().publicKey,
    state,
    ...options,
  });
  return { dir, spool, evidence, journal, state, sealer };
}
