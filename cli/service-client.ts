/**
 * The technician's end of the service port: one request at a time over a SerialLink, each answered
 * by a response with the same id (protocol/service-message.ts). Responses to an earlier session
 * (a pulled cable) carry another id and are ignored.
 */
import { randomBytes } from 'node:crypto';
import type { SerialLink } from '../hardware/serial-link.ts';
import { RecorderError, type ErrorCode, ErrorCodes } from '../protocol/errors.ts';
import {
  decodeServiceMessage,
  encodeServiceMessage,
  type JsonHeader,
  type ServiceOp,
} from '../protocol/service-message.ts';

export interface ServiceClientOptions {
  /** How long to wait for a response once the request was acknowledged. Default: 20 s (key generation on a slow board). */
  responseTimeoutMs?: number;
}

export interface ServiceResponse {
  header: JsonHeader;
  data: Buffer;
}

export class ServiceClient {
  private readonly session = randomBytes(4).toString('hex');
  private counter = 0;
  private waiting: { id: string; resolve: (r: ServiceResponse) => void } | null = null;
  readonly ignored = { stale: 0, malformed: 0 };

  constructor(
    readonly link: SerialLink,
    private readonly options: ServiceClientOptions = {},
  ) {
    link.on('message', (payload) => {
      let message: ServiceResponse;
      try {
        message = decodeServiceMessage(payload);
      } catch {
        this.ignored.malformed++;
        return;
      }
      if (this.waiting && message.header.id === this.waiting.id) {
        const w = this.waiting;
        this.waiting = null;
        w.resolve(message);
      } else this.ignored.stale++;
    });
  }

  /** Sends a request; resolves with the response, or throws the device's coded refusal. */
  async request(op: ServiceOp, header: JsonHeader = {}, data?: Buffer): Promise<ServiceResponse> {
    const id = `${this.session}-${++this.counter}`;
    const response = new Promise<ServiceResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new RecorderError('LINK_TIMEOUT', `the device did not answer ${op} in time`, { op }));
      }, this.options.responseTimeoutMs ?? 20_000);
      const onClose = () => {
        clearTimeout(timer);
        reject(new RecorderError('LINK_CLOSED', `the serial line closed while waiting for ${op}`));
      };
      this.link.once('close', onClose);
      this.waiting = {
        id,
        resolve: (r) => {
          clearTimeout(timer);
          this.link.off('close', onClose);
          resolve(r);
        },
      };
    });
    try {
      await this.link.send(encodeServiceMessage({ op, id, ...header }, data));
    } catch (error) {
      this.waiting = null;
      response.catch(() => undefined);
      throw error;
    }
    const reply = await response;
    if (reply.header.ok !== true) {
      const code = String(reply.header.code);
      throw new RecorderError(
        (code in ErrorCodes ? code : 'SERVICE_REFUSED') as ErrorCode,
        `the device refused ${op}: ${String(reply.header.message ?? 'no reason given')}`,
        { op, reply: reply.header },
      );
    }
    return reply;
  }
}
