/**
 * Benchmark (issue 7): flashing a profile with certificates over a pseudo-terminal at 115200 baud.
 * A pty has no baud rate, so a relay between two socat pty pairs paces bytes at 11,520 bytes/s
 * each way (8N1: 10 bits a byte). Reports the effective payload rate against that line rate
 * (goal ≥ 0.8), plus a baseline measured in the same run: raw bytes through the same relay.
 *
 *   npm run bench            (all benchmarks)
 *   node --import=tsx bench/serial-flash.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flashDevice } from '../cli/flash.ts';
import { unitCaDeviceIssuer } from '../cli/unit-ca.ts';
import { ServicePort } from '../device/service-port.ts';
import { statePaths } from '../device/state-paths.ts';
import { openSerialLink } from '../hardware/serial-link.ts';
import { encodeSignedProfile, signProfile } from '../protocol/signed-profile.ts';
import { LineRelay, openPort } from '../test/helpers/serial-line.ts';
import { startPtyPair } from '../test/helpers/socat.ts';
import { makeUnitCa, sampleProfile } from '../test/helpers/unit-ca.ts';

export const LINE_BYTES_PER_SECOND = 11_520;

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  goal?: string;
  note?: string;
}

export default async function bench(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'recorder-bench-flash-'));
  const pairs = [await startPtyPair(dir, 'dev'), await startPtyPair(dir, 'host')];
  const [devicePair, hostPair] = pairs as [(typeof pairs)[0], (typeof pairs)[0]];
  const relay = await LineRelay.start(devicePair.b, hostPair.b, { bytesPerSecond: LINE_BYTES_PER_SECOND });
  try {
    // Baseline: 23,040 raw bytes (2 s at line rate) through the same paced relay, no protocol.
    const baseline = await rawThroughput(devicePair.a, hostPair.a, 2 * LINE_BYTES_PER_SECOND);

    const ca = makeUnitCa(join(dir, 'ca'));
    const sign = (version: number, officer: string) =>
      encodeSignedProfile(
        signProfile(sampleProfile('HN-CS-0001', version, officer), {
          keyPem: ca.signerKeyPem,
          certPem: ca.signerCertPem,
        }),
      );
    const deviceLink = await openSerialLink({ path: devicePair.a });
    const device = await ServicePort.start({ link: deviceLink, paths: statePaths(join(dir, 'state')) });
    const host = await openSerialLink({ path: hostPair.a });
    try {
      let started = performance.now();
      const full = await flashDevice({
        link: host,
        signedProfile: sign(1, 'O-1001'),
        issueDeviceCertificate: unitCaDeviceIssuer(ca.dir),
      });
      const fullMs = performance.now() - started;
      started = performance.now();
      const update = await flashDevice({ link: host, signedProfile: sign(2, 'O-2002') });
      const updateMs = performance.now() - started;

      const uploads = [...full.uploads, ...update.uploads];
      const sent = uploads.reduce((n, u) => n + u.sent, 0);
      const ms = uploads.reduce((n, u) => n + u.ms, 0);
      const ratio = (bytes: number, millis: number) => bytes / (millis / 1000) / LINE_BYTES_PER_SECOND;
      return [
        {
          name: 'serial flash: emulated line, raw bytes (baseline)',
          value: round(baseline / LINE_BYTES_PER_SECOND),
          unit: '× 11,520 B/s',
          note: `${Math.round(baseline)} B/s measured`,
        },
        {
          name: 'serial flash: certificate + profile uploads, payload rate / line rate',
          value: round(ratio(sent, ms)),
          unit: '× 11,520 B/s',
          goal: '≥ 0.8',
          note: `${sent} payload bytes in ${Math.round(ms)} ms (first chunk sent → last chunk committed and answered)`,
        },
        {
          name: 'serial flash: whole factory flash (hello, CSR, keygen, issue, install, profile), payload rate / line rate',
          value: round(ratio(full.payloadBytes, fullMs)),
          unit: '× 11,520 B/s',
          note: `${full.payloadBytes} B in ${Math.round(fullMs)} ms; includes RSA key generation and openssl issuance`,
        },
        {
          name: 'serial flash: whole profile update, payload rate / line rate',
          value: round(ratio(update.payloadBytes, updateMs)),
          unit: '× 11,520 B/s',
          note: `${update.payloadBytes} B in ${Math.round(updateMs)} ms; includes session reset, hello and journal tail`,
        },
        {
          name: 'serial flash: retransmissions',
          value: host.stats.retransmissions + deviceLink.stats.retransmissions,
          unit: 'frames',
        },
      ];
    } finally {
      await host.close();
      await device.close();
      await deviceLink.close();
    }
  } finally {
    await relay.stop();
    for (const p of pairs) await p.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes per second of a raw write from one end to the other through the relay. */
async function rawThroughput(fromPath: string, toPath: string, bytes: number): Promise<number> {
  const from = await openPort(fromPath);
  const to = await openPort(toPath);
  try {
    let got = 0;
    let first = 0;
    const done = new Promise<number>((resolve) =>
      to.on('data', (chunk: Buffer) => {
        if (got === 0) first = performance.now();
        got += chunk.length;
        if (got >= bytes) resolve(performance.now());
      }),
    );
    const started = performance.now();
    from.write(Buffer.alloc(bytes, 0x55));
    const end = await done;
    void first;
    return bytes / ((end - started) / 1000);
  } finally {
    for (const p of [from, to]) await new Promise<void>((r) => p.close(() => r()));
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await bench()) console.log(JSON.stringify(r));
}
