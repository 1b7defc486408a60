/** An index row for the evidence store's own tests: a segment of device HN-CS-0001 holding `data`. */
import { createHash } from 'node:crypto';
import type { StoredItem } from '../../gateway/evidence-store.ts';

export function storedItem(
  id: string,
  data: Buffer,
  patch: Partial<StoredItem> = {},
): Omit<StoredItem, 'storedAt' | 'receipt'> {
  return {
    id,
    unit: 'HN',
    device: 'HN-CS-0001',
    officer: 'O1',
    event: 'E1',
    kind: 'segment',
    start: '2026-11-23T10:00:00.000Z',
    end: '2026-11-23T10:00:10.000Z',
    entrySeq: 3,
    entryHash: 'a'.repeat(64),
    entryLine: '{}',
    bytes: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
    positions: '[]',
    ...patch,
  };
}
