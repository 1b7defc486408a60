/**
 * A transport-level MQTT frame limit (issue 5 item 2; STACK-NOTES "MQTT": aedes has no packet size
 * limit). Sits between the TLS socket and aedes, reads only each packet's fixed header (MQTT 3.1.1
 * §2.2: one type byte, then the remaining length in 1–4 bytes of base-128) and closes the connection
 * as soon as a header announces more than `maxFrameBytes`, before aedes buffers the body. All bytes
 * pass through unchanged and in order, in whole packets: a read that holds only whole packets is
 * handed on as it is, and a packet spread over several reads (a 256 KiB upload chunk arrives in
 * sixteen 16 KiB TLS records) is joined once and handed on when it ends. So aedes parses each packet
 * once, instead of trying it again on every record and joining the pieces itself (event loop
 * 2.16–2.48 against 2.20–3.04 CPU s per GiB uploaded, alternating runs of `npm run bench -- upload`).
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

export class FrameGuard extends Duplex {
  /** bytes of the current packet body still to pass; -1 while reading a header */
  private remaining = -1;
  private headerBytes: number[] = [];
  /** the pieces of a packet that began in an earlier chunk and has not ended yet */
  private partial: Buffer[] = [];
  private partialBytes = 0;

  constructor(
    readonly socket: Socket,
    private readonly maxFrameBytes: number,
    private readonly onOversize: (announced: number) => void,
  ) {
    // Room for one whole packet of the largest allowed size (up to 1 MiB): with the default 16 KiB
    // the socket was paused and resumed a dozen times per upload chunk, and aedes parsed each
    // chunk in as many reads (upload throughput 80 → 105 MiB/s).
    super({
      allowHalfOpen: false,
      readableHighWaterMark: Math.min(Math.max(maxFrameBytes, 16_384), 1 << 20),
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (error) => this.destroy(error));
  }

  private onData(chunk: Buffer): void {
    /** where the bytes of this chunk not yet handed on begin */
    let from = 0;
    /** where the last packet that ended in this chunk ends */
    let ended = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining > 0) continue; // the chunk ends inside the body
        this.remaining = -1;
      } else {
        // Header: type byte, then length bytes until one without the continuation bit.
        this.headerBytes.push(chunk[i]!);
        i++;
        if (this.headerBytes.length === 1) continue;
        const last = this.headerBytes[this.headerBytes.length - 1]!;
        if (last & 0x80) {
          if (this.headerBytes.length === 5) return this.refuse(Number.MAX_SAFE_INTEGER); // §2.2.3: 4 bytes at most
          continue;
        }
        let length = 0;
        for (let k = this.headerBytes.length - 1; k >= 1; k--)
          length = length * 128 + (this.headerBytes[k]! & 0x7f);
        this.headerBytes = [];
        if (length + 5 > this.maxFrameBytes) return this.refuse(length);
        if (length > 0) {
          this.remaining = length;
          continue;
        }
      }
      // A packet ends at i.
      ended = i;
      if (this.partial.length > 0) from = this.joinPartial(chunk, from, i);
    }
    // Whole packets leave as a slice of the chunk; the start of an unfinished one waits for its end.
    if (ended > from) this.handOn(chunk.subarray(from, ended));
    const rest = Math.max(from, ended);
    if (rest < chunk.length) {
      this.partial.push(rest === 0 ? chunk : chunk.subarray(rest));
      this.partialBytes += chunk.length - rest;
    }
  }

  /** The packet begun in earlier chunks ends at `end` of this one: it leaves as one buffer. */
  private joinPartial(chunk: Buffer, from: number, end: number): number {
    this.partial.push(chunk.subarray(from, end));
    this.handOn(Buffer.concat(this.partial, this.partialBytes + end - from));
    this.partial = [];
    this.partialBytes = 0;
    return end;
  }

  private handOn(bytes: Buffer): void {
    if (!this.push(bytes)) this.socket.pause();
  }

  private refuse(announced: number): void {
    this.onOversize(announced);
    this.socket.destroy();
    this.destroy();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  /**
   * mqtt-packet writes one packet as up to six small pieces under `cork()` (fixed header, length,
   * topic, packet id, payload). Without `_writev` each piece became its own `SSL_write`: its own TLS
   * record and write(2). One write per batch: the fleet bench's relayed status (PUBACK + PUBLISH) went
   * from 9.3 write calls to 1.9.
   */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.socket.write(data, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}
