/**
 * The gateway's side of uploads over MQTT (issue 6 item 2): the evidence store, the receiver, and
 * the glue from the broker's upload messages to the receiver and back to the device's reply topics.
 *
 * - offer / done → receiver → `upload/state` (+ `upload/receipt`) of that device;
 * - data → receiver.chunk(); the broker acknowledges only when it resolves (the chunk is written),
 *   so the PUBACK paces the sender; a state the receiver returns (resume elsewhere) goes out on
 *   `upload/state`;
 * - journal → receiver.journal() → `upload/journal-state`;
 * - receiver alerts → log, 'upload-alert' (UploadAlert), and a fleet alert for that device
 *   (`station-storage` when the station cannot write, `upload-refused` otherwise).
 *
 * The device's evidence key comes from its verified TLS certificate (the broker keeps it per device).
 */
import { createPrivateKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import type { Identity } from '../protocol/acl.ts';
import { RecorderError, isRecorderError } from '../protocol/errors.ts';
import { deviceTopic, encodePayload, type ParsedTopic } from '../protocol/topics.ts';
import type { JournalState, UploadState } from '../protocol/upload.ts';
import type { GatewayConfig } from './config.ts';
import { EvidenceStore, type StoredItem } from './evidence-store.ts';
import type { UploadAlertName } from './fleet-monitor.ts';
import type { Logger } from './log.ts';
import { UploadReceiver, type ReceiverReply, type UploadAlert } from './upload-receiver.ts';

export interface UploadCounters {
  offers: number;
  chunks: number;
  bytes: number;
  stored: number;
  refused: number;
  alerts: number;
}

export interface UploadServiceOptions {
  unit: string;
  /** the name receipts give as holder (the unit's gateway id) */
  holder: string;
  evidence: GatewayConfig['evidence'];
  log: Logger;
  /** publishes a QoS 1 reply as the gateway itself */
  publish: (topic: string, text: string) => Promise<void>;
  /** the evidence key bound to a device's certificate, or null */
  deviceKey: (device: string) => KeyObject | null;
  /** the device's certificate (PEM), kept in the store for the relay to the center */
  deviceCertificate?: (device: string) => string | null;
  /** center role: the unit CAs a relayed device certificate must chain to */
  trustedCas?: readonly X509Certificate[];
  /** center role admitting several units: device ids begin with their unit (UploadReceiver) */
  deviceIdsNameUnit?: boolean;
  /** a fleet alert for a device */
  onAlert?: (device: string, alert: UploadAlertName) => void;
  /** an item of the device was stored */
  onStored?: (item: StoredItem) => void;
}

const STORAGE_CODES = new Set(['STORAGE_FULL', 'UPLOAD_WRITE_FAILED', 'STORE_FAILED']);

/**
 * Events: 'upload-alert' (UploadAlert), 'stored' (StoredItem), 'journal' {device, seq} (lines kept).
 */
export class UploadService extends EventEmitter {
  readonly counters: UploadCounters = { offers: 0, chunks: 0, bytes: 0, stored: 0, refused: 0, alerts: 0 };
  readonly store: EvidenceStore;
  /** null when the receipt key is missing: every offer is refused with UPLOAD_NOT_CONFIGURED */
  readonly receiver: UploadReceiver | null;

  constructor(private readonly options: UploadServiceOptions) {
    super();
    const { evidence, log } = options;
    this.store = new EvidenceStore(evidence.dir);
    let receiptKey: KeyObject | null = null;
    try {
      const mode = statSync(evidence.receiptKey).mode & 0o777;
      if (mode & 0o077)
        throw new Error(`mode ${mode.toString(8)}: it must be readable by its owner only (chmod 600)`);
      receiptKey = createPrivateKey(readFileSync(evidence.receiptKey));
    } catch (error) {
      log(
        'warn',
        'uploads are off: the receipt-signing key cannot be read (recorder gateway init writes one)',
        {
          path: evidence.receiptKey,
          error: (error as Error).message,
        },
      );
    }
    if (receiptKey && receiptKey.asymmetricKeyType !== 'ed25519') {
      log('warn', 'uploads are off: the receipt-signing key is not Ed25519', { path: evidence.receiptKey });
      receiptKey = null;
    }
    let centerKey: KeyObject | undefined;
    if (evidence.role === 'center') {
      // Issue 6 item 4: a center without its key cannot check what it stores: it does not start.
      try {
        centerKey = createPrivateKey(readFileSync(evidence.centerKey ?? ''));
      } catch (error) {
        this.store.close();
        throw new RecorderError(
          'GATEWAY_CONFIG_INVALID',
          `the center role needs evidence.centerKey, the RSA private key of the center: ${(error as Error).message}`,
        );
      }
    }
    this.receiver = receiptKey
      ? new UploadReceiver({
          store: this.store,
          unit: options.unit,
          holder: options.holder,
          role: evidence.role,
          receiptKey,
          deviceKey: options.deviceKey,
          ...(options.deviceCertificate ? { deviceCertificate: options.deviceCertificate } : {}),
          ...(options.trustedCas ? { trustedCas: options.trustedCas } : {}),
          ...(options.deviceIdsNameUnit ? { deviceIdsNameUnit: true } : {}),
          ...(centerKey ? { centerKey } : {}),
          maxItemBytes: evidence.maxItemBytes,
        })
      : null;
    this.receiver?.on('alert', (alert: UploadAlert) => this.onReceiverAlert(alert));
    this.receiver?.on(
      'rejected',
      (r: { device: string; id: string | null; code: string; message: string }) => {
        this.counters.refused++;
        log('info', `upload refused: ${r.message}`, { ...r });
      },
    );
    this.receiver?.on('journal', (head: { device: string; seq: number }) => this.emit('journal', head));
    this.receiver?.on('stored', (item: StoredItem) => {
      this.counters.stored++;
      log('info', 'upload stored', { device: item.device, id: item.id, bytes: item.bytes });
      options.onStored?.(item);
      this.emit('stored', item);
    });
  }

  private onReceiverAlert(alert: UploadAlert): void {
    this.counters.alerts++;
    this.options.log('warn', `upload alert: ${alert.message}`, { ...alert });
    this.options.onAlert?.(
      alert.device,
      alert.code === 'DEVICE_EVIDENCE_DAMAGED'
        ? 'evidence-damaged'
        : STORAGE_CODES.has(alert.code)
          ? 'station-storage'
          : 'upload-refused',
    );
    this.emit('upload-alert', alert);
  }

  /**
   * One upload message from the broker (after ACL and schema); resolves when it is handled. A
   * message whose handling fails for a reason of this station's (its disk or index, too many open
   * files) is answered refused with the code, so the device does not wait out a timeout, and
   * alerted like any upload alert (station-storage for the fleet).
   */
  async handle(_who: Identity, topic: ParsedTopic, value: unknown): Promise<void> {
    try {
      await this.dispatch(topic, value);
    } catch (error) {
      await this.failed(topic, value, error as Error);
    }
  }

  private async failed(topic: ParsedTopic, value: unknown, error: Error): Promise<void> {
    const errno = (error as NodeJS.ErrnoException).code;
    const code = isRecorderError(error) ? error.code : errno === 'ENOSPC' ? 'STORAGE_FULL' : 'STORE_FAILED';
    const reason = error.message.slice(0, 500);
    const id =
      topic.name === 'uploadData'
        ? (topic.id ?? null)
        : topic.name === 'uploadJournal'
          ? null
          : (value as { id?: unknown }).id;
    this.onReceiverAlert({
      code,
      device: topic.device,
      id: typeof id === 'string' ? id : null,
      message: `${topic.name} of ${topic.device} could not be handled: ${reason}`,
    });
    if (topic.name === 'uploadJournal') {
      await this.reply('uploadJournalState', topic.unit, topic.device, {
        status: 'refused',
        head: null,
        code,
        reason,
      });
    } else if (typeof id === 'string') {
      this.counters.refused++;
      await this.reply('uploadState', topic.unit, topic.device, {
        id,
        status: 'refused',
        offset: 0,
        code,
        reason,
      });
    }
  }

  private async dispatch(topic: ParsedTopic, value: unknown): Promise<void> {
    const device = topic.device;
    const receiver = this.receiver;
    if (topic.name === 'uploadData') {
      const data = value as Buffer;
      if (!receiver) return;
      this.counters.chunks++;
      const state = await receiver.chunk(device, topic.id!, topic.offset!, data, topic.unit);
      if (state) {
        if (state.status === 'refused') this.counters.refused++;
        await this.reply('uploadState', topic.unit, device, state);
      } else this.counters.bytes += data.length;
      return;
    }
    if (topic.name === 'uploadOffer' || topic.name === 'uploadDone') {
      if (topic.name === 'uploadOffer') this.counters.offers++;
      const reply: ReceiverReply = receiver
        ? topic.name === 'uploadOffer'
          ? await receiver.offer(device, value, topic.unit)
          : await receiver.done(device, value, topic.unit)
        : { state: this.notConfigured((value as { id: string }).id) };
      if (reply.state) await this.reply('uploadState', topic.unit, device, reply.state);
      if (reply.receipt) await this.reply('uploadReceipt', topic.unit, device, reply.receipt);
      return;
    }
    if (topic.name === 'uploadJournal') {
      const state: JournalState = receiver
        ? await receiver.journal(device, value, topic.unit)
        : {
            status: 'refused',
            head: null,
            code: 'UPLOAD_NOT_CONFIGURED',
            reason: 'the station has no receipt key',
          };
      await this.reply('uploadJournalState', topic.unit, device, state);
    }
  }

  private notConfigured(id: string): UploadState {
    this.counters.refused++;
    return {
      id,
      status: 'refused',
      offset: 0,
      code: 'UPLOAD_NOT_CONFIGURED',
      reason: 'the station has no receipt-signing key',
    };
  }

  private async reply(
    name: 'uploadState' | 'uploadReceipt' | 'uploadJournalState',
    unit: string,
    device: string,
    value: unknown,
  ): Promise<void> {
    const encoded = encodePayload(name, value as never);
    if (!encoded.ok) {
      // Our own reply failing our own schema is a bug; never publish it (the device would drop it).
      throw new RecorderError('UPLOAD_BAD_MESSAGE', `the gateway built an invalid ${name}`, {
        problems: encoded.problems,
      });
    }
    await this.options.publish(deviceTopic(name, unit, device), encoded.text);
  }

  /** Finishes the chunk writes already acknowledged, then closes the store. */
  /**
   * A client went away: the incoming files of the items it was sending are closed (they stay, and a
   * re-offer resumes). A device's own; at a center, a relaying station's unit's.
   */
  async disconnected(who: Identity): Promise<void> {
    if (!this.receiver) return;
    if (who.role === 'device') await this.receiver.release({ device: who.id });
    else if (who.role === 'gateway' && this.options.evidence.role === 'center')
      await this.receiver.release({ unit: who.unit });
  }

  async close(): Promise<void> {
    await this.receiver?.close();
    this.store.close();
  }
}
