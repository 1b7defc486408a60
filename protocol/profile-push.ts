/**
 * Profiles over the network (issue 7 item 4): the retained `rec/v1/{unit}/{device}/profile` topic
 * and the device's answer on `cmd/result`. Pure: node:crypto only.
 *
 * - The payload is the signed profile document exactly as `encodeSignedProfile` writes it (the
 *   same bytes as a file or the serial flash). The topic schema below is deliberately loose: the
 *   gateway and the device both run the real check, `verifySignedProfile`.
 * - The device answers every profile it receives on `cmd/result` with the id
 *   `profileResultId(bytes)` and the name `profile`, so the pusher can wait for exactly its answer.
 */
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { DeviceId } from './schemas/mqtt-common.ts';

export const PROFILE_RESULT_NAME = 'profile';

export const SignedProfilePayloadSchema = Type.Object(
  {
    profile: Type.Object(
      { device: DeviceId('the device the profile is for'), version: Type.Integer({ minimum: 1 }) },
      { additionalProperties: true, description: 'the device profile (`recorder profile schema`)' },
    ),
    signature: Type.Object(
      {
        alg: Type.Union([Type.Literal('RS256'), Type.Literal('EdDSA')]),
        certificate: Type.String({ maxLength: 16_384, description: 'the profile signer (PEM)' }),
        chain: Type.Optional(Type.Array(Type.String({ maxLength: 16_384 }), { maxItems: 3 })),
        value: Type.String({ maxLength: 2048, description: 'base64 signature over the canonical profile' }),
      },
      { additionalProperties: false },
    ),
  },
  {
    additionalProperties: false,
    title: 'Signed profile',
    $id: 'SignedProfile',
    description:
      "signed by the unit's profile signer; verified by the gateway before it is retained and by the device before it is applied",
  },
);
export type SignedProfilePayload = Static<typeof SignedProfilePayloadSchema>;

/** The `cmd/result` id a device answers a received profile with: 128 bits of its SHA-256. */
export function profileResultId(bytes: Uint8Array): string {
  return `profile:${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;
}

/** What the device says in `cmd/result.result` about a profile it received. */
export interface ProfileResultBody {
  /** `applied`: now in force; `in-force`: these exact bytes were already in force; `refused` */
  outcome: 'applied' | 'in-force' | 'refused';
  device?: string;
  version?: number;
  /** the version in force after this message */
  inForce?: number;
  officer?: string;
  /** profile sections that changed and take effect only after a restart */
  restartNeeded?: string[];
}
