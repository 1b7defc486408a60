/**
 * A rig device (test/helpers/evidence-rig.ts) uploading the way a recorder does (device/recorder.ts
 * startUploads): the real UploadRunner over an MqttUploadLink on a mutual-TLS mqtt.js connection that
 * reconnects by itself, with the device's state store as the queue. Docked from the start.
 *
 * It records what a fault test needs to see: every upload state and receipt that reached the
 * device, every round, the runner's log, and every entry the uploader journaled together with
 * whether the item's local file and queue entry still existed at that moment (a receipt must be
 * journaled before the delete; a refused receipt must leave both).
 */
import type { ExecutionContext } from 'ava';
import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { UploadRunner } from '../../device/upload-runner.ts';
import type { UploadRoundResult } from '../../device/uploader.ts';
import type { JournalEntry, JsonObject } from '../../protocol/journal-entry.ts';
import { MqttUploadLink } from '../../protocol/upload-mqtt.ts';
import type { Receipt, UploadState } from '../../protocol/upload.ts';
import type { DeviceRig } from './evidence-rig.ts';
import { tlsOptions } from './mqtt.ts';

export interface MqttUploadDevice {
  client: MqttClient;
  link: MqttUploadLink;
  runner: UploadRunner;
  /** every upload state and receipt the device received, in order */
  states: UploadState[];
  receipts: Receipt[];
  rounds: UploadRoundResult[];
  log: string[];
  /** every entry the uploader journaled, with the item's state at that moment */
  journaled: UploaderEntry[];
  /** items still in the device's upload queue */
  pending(): string[];
}

export interface UploaderEntry {
  kind: string;
  body: JsonObject;
  /** the item's local evidence file existed when the entry was appended */
  fileExisted: boolean;
  /** the item was still in the upload queue then */
  queued: boolean;
}

export interface MqttUploadDeviceOptions {
  /** Default 64 KiB. */
  chunkBytes?: number;
  /** Default 4. */
  window?: number;
  /** Default: the Uploader's (2). */
  itemsInFlight?: number;
  /** Default 3 s. */
  replyTimeoutMs?: number;
  /** mqtt.js reconnect period. Default 200 ms. */
  reconnectPeriodMs?: number;
}

export function mqttUploadDevice(
  t: ExecutionContext,
  rig: DeviceRig,
  url: string,
  unit: string,
  gatewayKey: KeyObject,
  options: MqttUploadDeviceOptions = {},
): MqttUploadDevice {
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    clientId: rig.id,
    clean: true,
    reconnectPeriod: options.reconnectPeriodMs ?? 200,
    connectTimeout: 30_000,
    ...tlsOptions({ ...rig.tls, serial: '', certPem: rig.certPem }),
  });
  client.on('error', () => undefined); // refused while the gateway is down: it keeps trying
  const link = new MqttUploadLink({ client, direct: client, unit, device: rig.id });
  const states: UploadState[] = [];
  const receipts: Receipt[] = [];
  link.on('state', (s: UploadState) => states.push(s));
  link.on('receipt', (r: Receipt) => receipts.push(r));
  const journaled: UploaderEntry[] = [];
  const log: string[] = [];
  const runner = new UploadRunner({
    link,
    device: rig.id,
    evidenceDir: rig.evidenceDir,
    journalPath: rig.journalPath,
    gatewayKey,
    store: rig.state,
    journal: {
      append: (kind: string, body: JsonObject): Promise<JournalEntry> => {
        const file = String(body.file);
        journaled.push({
          kind,
          body,
          fileExisted: existsSync(join(rig.evidenceDir, file)),
          queued: rig.state.data.uploadQueue.some((i) => i.file === file),
        });
        return rig.journal.append(kind, body);
      },
    },
    chunkBytes: options.chunkBytes ?? 64 * 1024,
    window: options.window ?? 4,
    ...(options.itemsInFlight ? { itemsInFlight: options.itemsInFlight } : {}),
    replyTimeoutMs: options.replyTimeoutMs ?? 3000,
    backoffMinMs: 200,
    backoffMaxMs: 1000,
    log: (msg) => log.push(msg),
  });
  const rounds: UploadRoundResult[] = [];
  runner.on('round', (r: UploadRoundResult) => rounds.push(r));
  // As device/recorder.ts does: the session is clean, so subscribe the replies on every connection.
  client.on('connect', () => {
    link.start().then(
      () => runner.setConnected(true),
      (error: Error) => log.push(`upload replies not subscribed: ${error.message}`),
    );
  });
  client.on('close', () => runner.setConnected(false));
  runner.setDocked(true);
  t.teardown(async () => {
    // The connection first: the round in progress then fails fast instead of waiting for replies.
    await client.endAsync(true);
    await runner.stop();
  });
  return {
    client,
    link,
    runner,
    states,
    receipts,
    rounds,
    log,
    journaled,
    pending: () => rig.state.data.uploadQueue.map((i) => i.file),
  };
}
