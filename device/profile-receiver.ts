/**
 * Profiles received over the network (issue 7 item 4): the device side of the retained
 * `rec/v1/{unit}/{device}/profile` topic. Every profile goes through ProfileStore.apply, the same
 * rules and the same journal entries as the serial flash (source `mqtt`).
 *
 * A retained message arrives again on every reconnect, so:
 * - the exact bytes already in force are answered `in-force` and not journaled again;
 * - a profile refused once is answered with the same refusal and not journaled again while the
 *   device runs (after a restart it is journaled once more: the journal then shows it was still
 *   offered).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { canonicalize } from '../protocol/canonical-json.ts';
import type { ProfileResultBody } from '../protocol/profile-push.ts';
import type { Profile } from '../protocol/schemas/profile.ts';
import type { ProfileStore } from './profile-store.ts';
import type { ProfileOutcome } from './telemetry.ts';

export const PROFILE_SOURCE_MQTT = 'mqtt';

export interface ProfileReceiverOptions {
  store: ProfileStore;
  /** the signed profile file in force (statePaths().profile) */
  path: string;
  /**
   * Called after a new profile was applied; returns the sections that need a restart to take
   * effect (the caller journals them). Default: none.
   */
  onApplied?: (profile: Profile) => Promise<string[]> | string[];
}

export type ProfileReceiver = (payload: Buffer) => Promise<ProfileOutcome>;

export function createProfileReceiver(options: ProfileReceiverOptions): ProfileReceiver {
  const refused = new Map<string, ProfileOutcome>();
  return async (payload) => {
    const sha256 = createHash('sha256').update(payload).digest('hex');
    const current = options.store.current();
    if (current && existsSync(options.path) && readFileSync(options.path).equals(payload)) {
      return { ok: true, result: { outcome: 'in-force', ...about(current), inForce: current.version } };
    }
    const again = refused.get(sha256);
    if (again) return again;
    const verdict = await options.store.apply(payload, PROFILE_SOURCE_MQTT);
    if (!verdict.ok) {
      const outcome: ProfileOutcome = {
        ok: false,
        result: {
          outcome: 'refused',
          ...(verdict.device !== undefined ? { device: verdict.device } : {}),
          ...(verdict.version !== undefined ? { version: verdict.version } : {}),
          ...(current ? { inForce: current.version } : {}),
        },
        error: { code: verdict.code, message: verdict.message },
      };
      // Bounded: a device that keeps being sent new garbage keeps journaling it, but memory stays small.
      if (refused.size >= 32) refused.delete(refused.keys().next().value!);
      refused.set(sha256, outcome);
      return outcome;
    }
    const restartNeeded = (await options.onApplied?.(verdict.profile)) ?? [];
    return {
      ok: true,
      result: {
        outcome: 'applied',
        ...about(verdict.profile),
        inForce: verdict.profile.version,
        ...(restartNeeded.length > 0 ? { restartNeeded } : {}),
      },
    };
  };
}

function about(profile: Profile): Pick<ProfileResultBody, 'device' | 'version' | 'officer'> {
  return { device: profile.device, version: profile.version, officer: profile.officers[0]! };
}

/** Sections a running recorder applies at once; a change anywhere else takes effect at the next start. */
export const LIVE_SECTIONS: readonly string[] = ['version', 'officers', 'announcement', 'reminderMinutes'];

/** The top-level sections of `next` that differ from `previous` and need a restart. */
export function sectionsNeedingRestart(previous: Profile, next: Profile): string[] {
  const keys = new Set([...Object.keys(previous), ...Object.keys(next)]);
  const out: string[] = [];
  for (const key of [...keys].sort()) {
    if (LIVE_SECTIONS.includes(key)) continue;
    const a = canonicalize((previous as Record<string, unknown>)[key] ?? null);
    const b = canonicalize((next as Record<string, unknown>)[key] ?? null);
    if (a !== b) out.push(key);
  }
  return out;
}
