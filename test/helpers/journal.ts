import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  EMPTY_HEAD,
  entryLine,
  headAfter,
  signEntry,
  type JsonObject,
} from '../../protocol/journal-entry.ts';

export interface TestJournal {
  lines: string[];
  text: string;
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** Builds a valid journal of `count` entries in memory, one second apart. */
export function buildJournal(
  count: number,
  device = 'HN-CS-0001',
  keys = generateKeyPairSync('ed25519'),
): TestJournal {
  let head = EMPTY_HEAD;
  const lines: string[] = [];
  const start = Date.parse('2026-11-22T10:00:00.000Z');
  for (let i = 0; i < count; i++) {
    const body: JsonObject = { n: i, note: i % 3 === 0 ? '现场检查 — 扣押' : 'mark', ok: i % 2 === 0 };
    const entry = signEntry(
      head,
      { device, kind: i === 0 ? 'power-on' : 'event', body, time: new Date(start + i * 1000) },
      keys.privateKey,
    );
    const line = entryLine(entry);
    lines.push(line);
    head = headAfter(entry, line);
  }
  return { lines, text: lines.map((l) => `${l}\n`).join(''), ...keys };
}
