/**
 * The gateway's profile service (issue 7 item 4): decides whether a pushed profile may be retained
 * on `rec/v1/{unit}/{device}/profile`, and keeps the last one per device on disk so a restarted
 * gateway publishes it again (aedes keeps retained messages in memory only).
 *
 * A profile is retained only if it passes the device's own check (`verifySignedProfile`: size,
 * JSON, signature chaining to this unit's CA, schema) for the device the topic names, names this
 * unit, and is not older than the one the gateway already holds for that device (re-pushing the
 * same bytes is allowed). So a forged profile is never retained, and a stale one never replaces a
 * newer one. The device still checks everything itself: it must also work behind a broker that
 * checks nothing (DESIGN.md "MQTT": mosquitto or any broker).
 *
 * Directory: DIR/<device>.signed.json, the exact bytes that were pushed (mode 0644, replaced
 * atomically: temporary file, fsync, rename, fsync the directory).
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '../protocol/errors.ts';
import { verifySignedProfile } from '../protocol/signed-profile.ts';
import { isValidSegment } from '../protocol/topics.ts';
import type { Logger } from './log.ts';

const SUFFIX = '.signed.json';

export interface ProfileServiceOptions {
  unit: string;
  /** PEM of the unit CA: profile signers must chain to it */
  caCertPem: string;
  /** where the last profile of each device is kept; undefined: in memory only (tests) */
  dir?: string;
  /** clock for certificate validity; default () => new Date() */
  now?: () => Date;
  log: Logger;
}

export type ProfileCheck =
  | { ok: true; device: string; version: number; same: boolean }
  | { ok: false; code: ErrorCode; message: string };

export class ProfileService {
  private readonly held = new Map<string, { bytes: Buffer; version: number }>();

  constructor(private readonly options: ProfileServiceOptions) {
    if (!options.dir) return;
    mkdirSync(options.dir, { recursive: true });
    for (const name of readdirSync(options.dir)) {
      if (!name.endsWith(SUFFIX)) continue;
      const device = name.slice(0, -SUFFIX.length);
      const bytes = readFileSync(join(options.dir, name));
      // Re-checked on load: a file edited or planted on disk is not published again.
      const check = this.verify(device, bytes);
      if (check.ok) this.held.set(device, { bytes, version: check.version });
      else options.log('error', 'a kept profile no longer verifies; not publishing it', { device, ...check });
    }
  }

  /** Every device with a kept profile, and its bytes (re-published retained on gateway start). */
  all(): [string, Buffer][] {
    return [...this.held].map(([device, h]) => [device, h.bytes]);
  }

  /** The last profile pushed for `device`, or undefined. */
  get(device: string): Buffer | undefined {
    return this.held.get(device)?.bytes;
  }

  /** May `bytes` be retained on `device`'s profile topic? */
  check(device: string, bytes: Buffer): ProfileCheck {
    const verdict = this.verify(device, bytes);
    if (!verdict.ok) return verdict;
    const current = this.held.get(device);
    if (current?.bytes.equals(bytes)) return { ...verdict, same: true };
    if (current && verdict.version <= current.version) {
      return {
        ok: false,
        code: 'PROFILE_ROLLBACK',
        message: `version ${verdict.version} is not higher than version ${current.version} the gateway already holds for ${device}`,
      };
    }
    return verdict;
  }

  /** Keeps `bytes` as `device`'s profile (after `check` said ok). */
  accept(device: string, bytes: Buffer, version: number): void {
    if (this.options.dir) writeAtomic(join(this.options.dir, `${device}${SUFFIX}`), bytes);
    this.held.set(device, { bytes, version });
  }

  private verify(device: string, bytes: Buffer): ProfileCheck {
    if (!isValidSegment(device))
      return { ok: false, code: 'PROFILE_WRONG_DEVICE', message: `bad device ${device}` };
    const verdict = verifySignedProfile(bytes, {
      caCertPem: this.options.caCertPem,
      device,
      now: (this.options.now ?? (() => new Date()))(),
    });
    if (!verdict.ok) return { ok: false, code: verdict.code, message: verdict.message };
    if (verdict.profile.unit !== this.options.unit) {
      return {
        ok: false,
        code: 'PROFILE_FOREIGN',
        message: `the profile names unit ${verdict.profile.unit}; this gateway serves ${this.options.unit}`,
      };
    }
    return { ok: true, device, version: verdict.profile.version, same: false };
  }
}

function writeAtomic(path: string, data: Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(join(path, '..'), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
