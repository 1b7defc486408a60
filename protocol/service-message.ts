/**
 * Messages of the service port (issue 7, item 2), carried one per DATA frame of the serial link
 * (protocol/serial-frame.ts). Pure: no I/O.
 *
 *   u16 header length | header: UTF-8 JSON | data: raw bytes (chunks; never base64, which would
 *   cost a third of the line)
 *
 * Requests carry `op` and `id`; every request gets exactly one response with the same `id`,
 * errors included (`ok: false`, `code`, `message`).
 */
import { RecorderError } from './errors.ts';

export const SERVICE_OPS = [
  'hello',
  'get-csr',
  'put-begin',
  'put-chunk',
  'commit',
  'journal-tail',
  'reboot',
] as const;
export type ServiceOp = (typeof SERVICE_OPS)[number];

/** What a chunked upload is for: the certificate + CA chain, or the signed profile. */
export type UploadTarget = 'identity' | 'profile';

export type JsonHeader = Record<string, unknown>;

export interface ServiceMessage {
  header: JsonHeader;
  data: Buffer;
}

export function encodeServiceMessage(header: JsonHeader, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > 0xffff) throw new RangeError('service message header exceeds 65535 bytes');
  const out = Buffer.alloc(2 + json.length + data.length);
  out.writeUInt16BE(json.length, 0);
  json.copy(out, 2);
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, 2 + json.length);
  return out;
}

/** Throws SERVICE_PROTOCOL for anything that is not a well-formed message. */
export function decodeServiceMessage(payload: Uint8Array): ServiceMessage {
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (buf.length < 2)
    throw new RecorderError('SERVICE_PROTOCOL', 'a service message is shorter than its length field');
  const length = buf.readUInt16BE(0);
  if (2 + length > buf.length)
    throw new RecorderError('SERVICE_PROTOCOL', 'a service message header is cut short');
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(2, 2 + length).toString('utf8'));
  } catch (error) {
    throw new RecorderError(
      'SERVICE_PROTOCOL',
      `a service message header is not JSON: ${(error as Error).message}`,
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new RecorderError('SERVICE_PROTOCOL', 'a service message header is not an object');
  }
  return { header: header as JsonHeader, data: Buffer.from(buf.subarray(2 + length)) };
}
