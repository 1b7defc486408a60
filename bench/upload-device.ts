/**
 * The recorder's side of the upload bench: a simulated recorder with freshly sealed segments, and
 * one upload round of all it holds over its own mutual-TLS MQTT connection, as the recorder's
 * Uploader makes it. Used by bench/upload.ts and by its dock children (bench/upload-dock-child.ts).
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { MqttUploadLink } from '../protocol/upload-mqtt.ts';
import { sealedDevice, type SealedDevice } from '../test/helpers/sealed-device.ts';
import { sealMeta } from '../test/helpers/sealing.ts';

export const MiB = 1024 * 1024;

/** A device with `items` sealed segments of `mib` MiB of random data each. */
export async function benchDevice(
  caDir: string,
  dir: string,
  id: string,
  mib: number,
  items = 1,
): Promise<SealedDevice> {
  const device = await sealedDevice({ id, dir: join(dir, 'devices', id), caDir });
  const block = randomBytes(Math.min(4 * MiB, mib * MiB));
  for (let n = 0; n < items; n++) {
    const spoolFile = join(device.spoolDir, `seg-${n}.ts`);
    const fd = openSync(spoolFile, 'w');
    for (let done = 0; done < mib * MiB; done += block.length)
      writeSync(fd, block, 0, Math.min(block.length, mib * MiB - done));
    closeSync(fd);
    const start = new Date(Date.UTC(2026, 10, 22, 10, 0, 10 * n));
    await device.sealFile(
      spoolFile,
      sealMeta({
        event: `EV-${id}`,
        segment: n,
        start,
        end: new Date(start.getTime() + 10_000),
        runningStartMs: 10_000 * n,
        runningEndMs: 10_000 * (n + 1),
      }),
    );
  }
  return device;
}

/** Bytes of the sealed items a device holds. */
export function heldBytes(device: SealedDevice): number {
  return device.items.reduce((n, item) => n + item.bytes, 0);
}

export interface UploadSettings {
  url: string;
  unit: string;
  receiptPub: string;
  chunkBytes: number;
  window: number;
  /** chunks written directly on the connection (DirectMqttClient) or through mqtt.js publish */
  direct: boolean;
  /** the Uploader's itemsInFlight (its default when not given) */
  itemsInFlight?: number;
}

/** One upload round of everything the device holds, on its own connection. */
export async function upload(
  device: SealedDevice,
  { url, unit, receiptPub, chunkBytes, window, direct, itemsInFlight }: UploadSettings,
): Promise<{ seconds: number; tailSeconds: number; suite: string }> {
  const identity = device.tls;
  const client: MqttClient = await mqtt.connectAsync(url, {
    clientId: `${device.id}:upload`,
    key: readFileSync(identity.key),
    cert: readFileSync(identity.cert),
    ca: readFileSync(identity.ca),
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  // As the recorder does (device/telemetry.ts): Nagle's algorithm off.
  (client.stream as TLSSocket).setNoDelay(true);
  try {
    const link = new MqttUploadLink({
      client,
      ...(direct ? { direct: client } : {}),
      unit,
      device: device.id,
    });
    await link.start();
    const uploader = device.uploader({
      link,
      gatewayKey: createPublicKey(readFileSync(receiptPub)),
      chunkBytes,
      window,
      ...(itemsInFlight ? { itemsInFlight } : {}),
      replyTimeoutMs: 120_000,
      onProgress: (item, sent) => {
        if (sent === item.bytes) allAcked = process.hrtime.bigint();
      },
    });
    let allAcked = 0n;
    const items = device.items.length; // the queue: it forgets each item once receipted
    const t0 = process.hrtime.bigint();
    const result = await uploader.uploadAll();
    const t1 = process.hrtime.bigint();
    const seconds = Number(t1 - t0) / 1e9;
    if (result.failed.length > 0 || result.receipted.length !== items)
      throw new Error(`upload of ${device.id} failed: ${JSON.stringify(result.failed)}`);
    return {
      seconds,
      // From the last chunk's PUBACK to the end: done, the gateway's last datasync, the store and
      // the receipt, then the recorder's journal line and the deletion of its copy.
      tailSeconds: Number(t1 - allAcked) / 1e9,
      suite: (client.stream as TLSSocket).getCipher().standardName,
    };
  } finally {
    await client.endAsync();
    await device.journal.close();
  }
}
