/**
 * A reliable message link over a serial line (issue 7, item 2): every DATA frame is acknowledged,
 * retransmitted on timeout, and given up on with LINK_TIMEOUT after `maxRetries` attempts.
 * Retransmitted frames whose acknowledgement was lost are recognised by sequence number,
 * acknowledged again, and not delivered twice.
 *
 * One DATA frame is in flight per direction (stop-and-wait). The payload per frame is large
 * (4 KiB by default) so the acknowledgement's round trip costs little of the line: at
 * 115200 baud a 4 KiB frame takes 357 ms and its 12-byte acknowledgement about 1 ms (measured
 * in bench/serial-flash.ts). The byte stream is any Duplex: a real serialport in production and
 * in tests (socat pseudo-terminals), opened with `openSerialLink`.
 */
import { EventEmitter } from 'node:events';
import { read } from 'node:fs';
import type { Duplex } from 'node:stream';
import { RecorderError } from '../protocol/errors.ts';
import {
  DEFAULT_MAX_PAYLOAD,
  FRAME_OVERHEAD,
  FrameDecoder,
  FrameType,
  encodeFrame,
  type Discarded,
  type Frame,
} from '../protocol/serial-frame.ts';

export interface SerialLinkOptions {
  /** Largest payload of one DATA frame this end sends. Default: 4096. */
  maxPayload?: number;
  /** Largest payload accepted from the peer (a frame-size choice of the other end). Default: 16384. */
  maxReceivePayload?: number;
  /** Line rate in bit/s, used to size the acknowledgement timeout (8N1: 10 bits a byte). Default: 115200. */
  baud?: number;
  /** Time allowed for an acknowledgement on top of the frames' transmission time. Default: 300 ms. */
  ackTimeoutMs?: number;
  /** Transmissions of one frame before LINK_TIMEOUT. Default: 8. */
  maxAttempts?: number;
  /** Debug log of frames, hex with direction (STYLE.md "Logging"). Default: none. */
  debug?: (line: string) => void;
}

export interface SerialLinkStats {
  framesSent: number;
  retransmissions: number;
  framesReceived: number;
  duplicates: number;
  bytesWritten: number;
  bytesRead: number;
  discarded: Record<string, number>;
}

interface Outstanding {
  seq: number;
  type: number;
  bytes: Buffer;
  attempts: number;
  timer: NodeJS.Timeout | null;
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface SerialLinkEvents {
  message: [payload: Buffer];
  reset: [];
  discarded: [record: Discarded];
  close: [];
}

export class SerialLink extends EventEmitter<SerialLinkEvents> {
  private readonly decoder: FrameDecoder;
  private readonly maxPayload: number;
  private readonly baud: number;
  private readonly ackTimeoutMs: number;
  private readonly maxAttempts: number;
  private txSeq: number;
  private lastRxSeq: number | null = null;
  private outstanding: Outstanding | null = null;
  private queue: Array<{ type: number; payload: Buffer; resolve: () => void; reject: (e: Error) => void }> =
    [];
  private closed = false;
  /** Largest frame seen from the peer (first guess: as large as ours); its ack may queue behind one. */
  private peerFrameBytes: number;
  readonly stats: SerialLinkStats = {
    framesSent: 0,
    retransmissions: 0,
    framesReceived: 0,
    duplicates: 0,
    bytesWritten: 0,
    bytesRead: 0,
    discarded: {},
  };

  constructor(
    private readonly stream: Duplex,
    private readonly options: SerialLinkOptions = {},
  ) {
    super();
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.baud = options.baud ?? 115200;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 300;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.peerFrameBytes = this.maxPayload + FRAME_OVERHEAD;
    // A random start makes a frame left over from an earlier session unlikely to pass as new.
    this.txSeq = Math.floor(Math.random() * 0x10000);
    this.decoder = new FrameDecoder({
      maxPayload: Math.max(options.maxReceivePayload ?? 16384, this.maxPayload),
    });
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('close', () => this.shutdown(new RecorderError('LINK_CLOSED', 'the serial line closed')));
    stream.on('error', (error: Error) =>
      this.shutdown(new RecorderError('LINK_CLOSED', `the serial line failed: ${error.message}`)),
    );
  }

  /** Largest payload this end puts in one frame. */
  get framePayload(): number {
    return this.maxPayload;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends one message; resolves once the peer acknowledged it. Messages go out in order. */
  send(payload: Buffer): Promise<void> {
    if (payload.length > this.maxPayload) {
      return Promise.reject(
        new RangeError(`message of ${payload.length} bytes exceeds the frame limit ${this.maxPayload}`),
      );
    }
    return this.enqueue(FrameType.DATA, payload);
  }

  /** Starts a session: the peer forgets its duplicate-detection state. Resolves when acknowledged. */
  reset(): Promise<void> {
    return this.enqueue(FrameType.RESET, Buffer.alloc(0));
  }

  private enqueue(type: number, payload: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new RecorderError('LINK_CLOSED', 'the serial link is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ type, payload, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.outstanding || this.closed) return;
    const next = this.queue.shift();
    if (!next) return;
    this.txSeq = (this.txSeq + 1) & 0xffff;
    const frame: Frame = { type: next.type, seq: this.txSeq, payload: next.payload };
    this.outstanding = {
      seq: this.txSeq,
      type: next.type,
      bytes: encodeFrame(frame),
      attempts: 0,
      timer: null,
      resolve: next.resolve,
      reject: next.reject,
    };
    this.transmit();
  }

  private transmit(): void {
    const o = this.outstanding;
    if (!o || this.closed) return;
    if (o.attempts >= this.maxAttempts) {
      this.outstanding = null;
      o.reject(
        new RecorderError(
          'LINK_TIMEOUT',
          `no acknowledgement for frame ${o.seq} after ${o.attempts} attempts; check the cable and that the device is in maintenance mode`,
          { seq: o.seq, attempts: o.attempts },
        ),
      );
      this.pump();
      return;
    }
    if (o.attempts > 0) this.stats.retransmissions++;
    o.attempts++;
    this.stats.framesSent++;
    this.write(o.bytes);
    // Our frame, and a largest frame the peer may be sending (its ack queues behind it), at 8N1.
    const lineMs = ((o.bytes.length + this.peerFrameBytes + FRAME_OVERHEAD) * 10 * 1000) / this.baud;
    o.timer = setTimeout(() => this.transmit(), this.ackTimeoutMs + lineMs);
  }

  private write(bytes: Buffer): void {
    this.stats.bytesWritten += bytes.length;
    this.options.debug?.(`> ${bytes.subarray(0, 64).toString('hex')}${bytes.length > 64 ? '…' : ''}`);
    this.stream.write(bytes);
  }

  private onData(chunk: Buffer): void {
    this.stats.bytesRead += chunk.length;
    for (const item of this.decoder.push(chunk)) {
      if (item.kind === 'discarded') {
        const r = item.discarded;
        this.stats.discarded[r.reason] = (this.stats.discarded[r.reason] ?? 0) + r.bytes;
        this.emit('discarded', r);
        continue;
      }
      this.onFrame(item.frame);
    }
  }

  private onFrame(frame: Frame): void {
    if (this.closed) return;
    this.options.debug?.(`< type ${frame.type} seq ${frame.seq} len ${frame.payload.length}`);
    this.peerFrameBytes = Math.max(this.peerFrameBytes, frame.payload.length + FRAME_OVERHEAD);
    switch (frame.type) {
      case FrameType.ACK: {
        const o = this.outstanding;
        if (!o || o.seq !== frame.seq) return; // a late ack for a frame already done
        if (o.timer) clearTimeout(o.timer);
        this.outstanding = null;
        o.resolve();
        this.pump();
        return;
      }
      case FrameType.RESET:
        this.write(encodeFrame({ type: FrameType.ACK, seq: frame.seq, payload: Buffer.alloc(0) }));
        this.lastRxSeq = null;
        this.emit('reset');
        return;
      case FrameType.DATA:
        this.write(encodeFrame({ type: FrameType.ACK, seq: frame.seq, payload: Buffer.alloc(0) }));
        if (frame.seq === this.lastRxSeq) {
          // Our ack was lost and the peer sent it again: acknowledged, not delivered twice.
          this.stats.duplicates++;
          return;
        }
        this.lastRxSeq = frame.seq;
        this.stats.framesReceived++;
        this.emit('message', frame.payload);
        return;
    }
  }

  private shutdown(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.outstanding?.timer) clearTimeout(this.outstanding.timer);
    this.outstanding?.reject(error);
    this.outstanding = null;
    for (const q of this.queue.splice(0)) q.reject(error);
    this.emit('close');
  }

  /** Closes the link and the underlying stream; pending sends fail with LINK_CLOSED. */
  async close(): Promise<void> {
    this.shutdown(new RecorderError('LINK_CLOSED', 'the serial link was closed'));
    const port = this.stream as Duplex & {
      isOpen?: boolean;
      close?: (cb: (e?: Error | null) => void) => void;
    };
    if (typeof port.close === 'function' && port.isOpen) {
      // serialport: close() releases the fd and its poller; destroy() alone keeps the process alive.
      await new Promise<void>((resolve) => port.close!(() => resolve()));
    }
    if (!this.stream.destroyed) this.stream.destroy();
  }
}

export interface OpenSerialLinkOptions extends SerialLinkOptions {
  path: string;
}

/**
 * Opens a real serial port (serialport 13, imported lazily: STYLE.md "Hardware") whose reads treat
 * a hung-up line as a disconnect (see hangUpAware): the port closes itself when the other end goes.
 */
export async function openSerialPort(options: { path: string; baud?: number }) {
  const { SerialPort } = await import('serialport');
  const port = new SerialPort({
    path: options.path,
    baudRate: options.baud ?? 115200,
    autoOpen: false,
    // SerialPort takes the binding from its options when one is given (serialport 13).
    binding: hangUpAware(SerialPort.binding),
  } as ConstructorParameters<typeof SerialPort>[0]);
  await new Promise<void>((resolve, reject) =>
    port.open((error) =>
      error
        ? reject(
            new RecorderError('LINK_CLOSED', `cannot open serial port ${options.path}: ${error.message}`, {
              path: options.path,
            }),
          )
        : resolve(),
    ),
  );
  return port;
}

/** Opens a real serial port and a link on it. */
export async function openSerialLink(options: OpenSerialLinkOptions): Promise<SerialLink> {
  return new SerialLink(await openSerialPort(options), options);
}

interface UnixPortBinding {
  fd: number | null;
  readonly isOpen: boolean;
  poller: { once(event: 'readable', callback: (error?: Error | null) => void): void };
  read(buffer: Buffer, offset: number, length: number): Promise<{ bytesRead: number; buffer: Buffer }>;
}

/**
 * A line that hangs up must close the link. A tty whose other end went away (socat killed: the
 * pty master closed; a USB gadget unplugged) is "hung up": read() returns 0 at once, forever.
 * serialport's unixRead (bindings-cpp 13) treats 0 as "try again" and loops on the thread pool,
 * burning a core and never closing the port, so nothing notices the pulled cable and the process
 * never exits (the "Failed to exit" of flash.test.ts). Here a 0-byte read is a disconnect: the
 * stream closes the port and the link fails pending sends with LINK_CLOSED. Otherwise the same
 * read: wait for the poller on EAGAIN, as unixRead does.
 */
function hangUpAware<B extends { open(options: never): Promise<unknown> }>(base: B): B {
  const open = base.open.bind(base) as (options: unknown) => Promise<unknown>;
  return {
    ...base,
    open: async (options: unknown) => {
      const port = (await open(options)) as Partial<UnixPortBinding>;
      if (typeof port.fd !== 'number' || !port.poller) return port; // not a Unix tty (Windows)
      const unix = port as UnixPortBinding;
      const readOnce = (buffer: Buffer, offset: number, length: number) =>
        new Promise<number>((resolve, reject) =>
          read(unix.fd!, buffer, offset, length, null, (error, bytes) =>
            error ? reject(error) : resolve(bytes),
          ),
        );
      unix.read = async (buffer, offset, length) => {
        for (;;) {
          if (!unix.isOpen || unix.fd === null)
            throw Object.assign(new Error('Port is not open'), { canceled: true });
          let bytesRead: number;
          try {
            bytesRead = await readOnce(buffer, offset, length);
          } catch (error) {
            const code = (error as NodeJS.ErrnoException).code;
            if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw error;
            // Closed while the read was on the thread pool: the poller is destroyed, and polling a
            // destroyed poller crashes the process (native code).
            if (!unix.isOpen || unix.fd === null)
              throw Object.assign(new Error('Port is not open'), { canceled: true });
            await new Promise<void>((resolve, reject) =>
              unix.poller.once('readable', (e) => (e ? reject(e) : resolve())),
            );
            continue;
          }
          if (bytesRead === 0) {
            throw Object.assign(new Error('the serial line hung up (its other end went away)'), {
              disconnect: true,
            });
          }
          return { bytesRead, buffer };
        }
      };
      return unix;
    },
  } as B;
}
