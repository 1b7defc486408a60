/**
 * The signed profile in force on a device (issue 7, item 1). A new profile is verified against
 * the pinned unit CA, this device's number and the version in force, then applied atomically
 * (write a temporary file, fsync, rename, fsync the directory), so a failed or interrupted flash
 * leaves the last good profile in force. Every accepted or refused profile is a journal entry.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { JournalWriter } from './journal-writer.ts';
import { replaceFileDurable } from './fs-durable.ts';
import type { Profile } from '../protocol/schemas/profile.ts';
import { verifySignedProfile, type ProfileVerdict } from '../protocol/signed-profile.ts';

export const PROFILE_ACCEPTED = 'profile-accepted';
export const PROFILE_REFUSED = 'profile-refused';

export interface ProfileStoreOptions {
  /** File holding the signed profile in force (statePaths().profile). */
  path: string;
  /** This device's number. */
  device: string;
  /** PEM of the unit CA pinned at provisioning. */
  caCertPem: string;
  journal: JournalWriter;
  /** Where the profile came from, journaled with the verdict. Default: 'service-port'. */
  source?: string;
  /** Clock for certificate validity. Default: () => new Date(). */
  now?: () => Date;
}

export class ProfileStore {
  constructor(private readonly options: ProfileStoreOptions) {}

  /** The profile in force, or null on a factory-new device. It was verified when applied. */
  current(): Profile | null {
    if (!existsSync(this.options.path)) return null;
    const doc = JSON.parse(readFileSync(this.options.path, 'utf8')) as { profile: Profile };
    return doc.profile;
  }

  get currentVersion(): number | null {
    return this.current()?.version ?? null;
  }

  /**
   * Closes the one crash window of `apply` (applied, power cut before the journal entry): if the
   * profile in force is not the last one the journal accepted, journal it now as recovered.
   */
  async reconcile(lastAcceptedSha256: string | null): Promise<boolean> {
    if (!existsSync(this.options.path)) return false;
    const bytes = readFileSync(this.options.path);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 === lastAcceptedSha256) return false;
    const profile = this.current()!;
    await this.options.journal.append(PROFILE_ACCEPTED, {
      source: 'recovered',
      recovered: true,
      sha256,
      bytes: bytes.length,
      unit: profile.unit,
      device: profile.device,
      version: profile.version,
      officers: profile.officers,
    });
    return true;
  }

  /** Verifies and, if good, applies `bytes`; journals the verdict either way and returns it. */
  async apply(bytes: Uint8Array, source = this.options.source ?? 'service-port'): Promise<ProfileVerdict> {
    const currentVersion = this.currentVersion;
    const verdict = verifySignedProfile(bytes, {
      caCertPem: this.options.caCertPem,
      device: this.options.device,
      ...(currentVersion !== null ? { currentVersion } : {}),
      now: (this.options.now ?? (() => new Date()))(),
    });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (!verdict.ok) {
      await this.options.journal.append(PROFILE_REFUSED, {
        code: verdict.code,
        reason: verdict.message.slice(0, 1000),
        source,
        sha256,
        bytes: bytes.length,
        ...(verdict.device !== undefined ? { device: verdict.device } : {}),
        ...(verdict.version !== undefined ? { version: verdict.version } : {}),
        ...(currentVersion !== null ? { inForce: currentVersion } : {}),
      });
      return verdict;
    }
    // Applied before it is journaled: a power cut in between leaves the new profile in force and
    // unjournaled, never a journaled profile that is not in force.
    replaceFileDurable(this.options.path, bytes);
    await this.options.journal.append(PROFILE_ACCEPTED, {
      source,
      sha256,
      bytes: bytes.length,
      unit: verdict.profile.unit,
      device: verdict.profile.device,
      version: verdict.profile.version,
      officers: verdict.profile.officers,
      signer: verdict.signer.subject.replace(/\n/g, ', '),
      ...(currentVersion !== null ? { replaced: currentVersion } : {}),
    });
    return verdict;
  }
}
