/**
 * Framing for the service port (issue 7): bytes → frames, with garbage counted, never dropped
 * silently (zwave-js emits "discarded" records; STYLE.md "Shape"). Pure: no I/O, no timers.
 *
 * Frame layout (big-endian), 12 bytes of overhead:
 *
 *   0xA5 0x5A | type u8 | seq u16 | length u16 | hcheck u8 | payload (length bytes) | crc32 u32
 *
 * - `hcheck` is the low byte of CRC-32 over type|seq|length: a corrupted length is caught at once
 *   instead of making the decoder wait for bytes that never come.
 * - `crc32` is CRC-32/ISO-HDLC (the zlib/Ethernet CRC) over type|seq|length|hcheck|payload.
 * - On any mismatch the decoder discards the first start byte only and rescans, so a real frame
 *   hidden inside a damaged one is still found.
 */

export const FRAME_START = Buffer.from([0xa5, 0x5a]);
export const FRAME_HEADER_BYTES = 8;
export const FRAME_OVERHEAD = FRAME_HEADER_BYTES + 4;
/** Largest payload a frame may carry by default; the decoder refuses larger lengths. */
export const DEFAULT_MAX_PAYLOAD = 4096;

export const FrameType = {
  /** application payload; acknowledged */
  DATA: 0x01,
  /** acknowledges DATA or RESET with the same sequence number */
  ACK: 0x02,
  /** starts a session: both ends forget sequence state; acknowledged */
  RESET: 0x03,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  type: number;
  seq: number;
  payload: Buffer;
}

export type DiscardReason = 'garbage' | 'bad-header' | 'bad-crc' | 'oversize' | 'unknown-type';

export interface Discarded {
  reason: DiscardReason;
  bytes: number;
}

export type DecodedItem = { kind: 'frame'; frame: Frame } | { kind: 'discarded'; discarded: Discarded };

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    // CRC-32/ISO-HDLC: reflected polynomial 0xEDB88320 (ISO 3309, RFC 1952 §8).
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function encodeFrame(frame: Frame): Buffer {
  const { type, seq, payload } = frame;
  if (payload.length > 0xffff) throw new RangeError(`frame payload ${payload.length} exceeds 65535 bytes`);
  const out = Buffer.alloc(FRAME_OVERHEAD + payload.length);
  FRAME_START.copy(out, 0);
  out.writeUInt8(type, 2);
  out.writeUInt16BE(seq & 0xffff, 3);
  out.writeUInt16BE(payload.length, 5);
  out.writeUInt8(crc32(out, 2, 7) & 0xff, 7);
  payload.copy(out, FRAME_HEADER_BYTES);
  out.writeUInt32BE(crc32(out, 2, FRAME_HEADER_BYTES + payload.length), FRAME_HEADER_BYTES + payload.length);
  return out;
}

export interface FrameDecoderOptions {
  /** Largest payload accepted. Default: DEFAULT_MAX_PAYLOAD (4096). */
  maxPayload?: number;
}

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

/** Incremental decoder: push chunks, get frames and discarded-byte records, in order. */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly maxPayload: number;
  /** Totals per reason since construction. */
  readonly discardedTotals: Record<DiscardReason, number> = {
    garbage: 0,
    'bad-header': 0,
    'bad-crc': 0,
    oversize: 0,
    'unknown-type': 0,
  };
  framesDecoded = 0;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  }

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.buffer.length;
  }

  push(chunk: Uint8Array): DecodedItem[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : Buffer.from(chunk);
    const items: DecodedItem[] = [];
    let pos = 0;
    let garbage = 0;
    const discard = (reason: DiscardReason, bytes: number) => {
      if (reason === 'garbage') {
        garbage += bytes;
        return;
      }
      flushGarbage();
      items.push({ kind: 'discarded', discarded: { reason, bytes } });
      this.discardedTotals[reason] += bytes;
    };
    const flushGarbage = () => {
      if (garbage === 0) return;
      items.push({ kind: 'discarded', discarded: { reason: 'garbage', bytes: garbage } });
      this.discardedTotals.garbage += garbage;
      garbage = 0;
    };
    const buf = this.buffer;
    while (pos < buf.length) {
      if (buf[pos] !== FRAME_START[0]) {
        discard('garbage', 1);
        pos++;
        continue;
      }
      if (pos + 1 >= buf.length) break;
      if (buf[pos + 1] !== FRAME_START[1]) {
        discard('garbage', 1);
        pos++;
        continue;
      }
      if (pos + FRAME_HEADER_BYTES > buf.length) break;
      const type = buf[pos + 2]!;
      const length = buf.readUInt16BE(pos + 5);
      if ((crc32(buf, pos + 2, pos + 7) & 0xff) !== buf[pos + 7]) {
        discard('bad-header', 1);
        pos++;
        continue;
      }
      if (length > this.maxPayload) {
        discard('oversize', 1);
        pos++;
        continue;
      }
      const end = pos + FRAME_HEADER_BYTES + length + 4;
      if (end > buf.length) break;
      if (crc32(buf, pos + 2, end - 4) !== buf.readUInt32BE(end - 4)) {
        discard('bad-crc', 1);
        pos++;
        continue;
      }
      if (!KNOWN_TYPES.has(type)) {
        discard('unknown-type', end - pos);
        pos = end;
        continue;
      }
      flushGarbage();
      items.push({
        kind: 'frame',
        frame: {
          type,
          seq: buf.readUInt16BE(pos + 3),
          payload: Buffer.from(buf.subarray(pos + FRAME_HEADER_BYTES, end - 4)),
        },
      });
      this.framesDecoded++;
      pos = end;
    }
    flushGarbage();
    this.buffer = pos === 0 ? buf : Buffer.from(buf.subarray(pos));
    return items;
  }

  /** Counts whatever is still held as garbage (the line went quiet or closed mid-frame). */
  flush(): DecodedItem[] {
    if (this.buffer.length === 0) return [];
    const bytes = this.buffer.length;
    this.buffer = Buffer.alloc(0);
    this.discardedTotals.garbage += bytes;
    return [{ kind: 'discarded', discarded: { reason: 'garbage', bytes } }];
  }
}
