import test from 'ava';
import type { ExecutionContext } from 'ava';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalWriter } from '../../device/journal-writer.ts';
import { ProfileStore } from '../../device/profile-store.ts';
import { canonicalize } from '../../protocol/canonical-json.ts';
import {
  MAX_SIGNED_PROFILE_BYTES,
  encodeSignedProfile,
  signProfile,
  verifySignedProfile,
} from '../../protocol/signed-profile.ts';
import { tempDir } from '../helpers/temp.ts';
import { makeUnitCa, sampleProfile, type UnitCaFiles } from '../helpers/unit-ca.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

// Two units, made once for the file (RSA key generation is the slow part).
const base = mkdtempSync(join(tmpdir(), 'recorder-ca-'));
const unit: UnitCaFiles = makeUnitCa(join(base, 'hn-cs'));
const otherUnit: UnitCaFiles = makeUnitCa(join(base, 'sx-xa'), { name: 'SX-XA' });
const notSigner: UnitCaFiles = makeUnitCa(join(base, 'client'), { signerEku: 'clientAuth' });
test.after.always(() => import('node:fs').then((fs) => fs.rmSync(base, { recursive: true, force: true })));

const sign = (profile: Record<string, unknown>, ca = unit) =>
  encodeSignedProfile(signProfile(profile, { keyPem: ca.signerKeyPem, certPem: ca.signerCertPem }));

test('a profile signed by the unit signer verifies; the signature covers the canonical JSON', (t) => {
  const doc = signProfile(sampleProfile(), { keyPem: unit.signerKeyPem, certPem: unit.signerCertPem });
  t.is(doc.signature.alg, 'RS256');
  const verdict = verifySignedProfile(encodeSignedProfile(doc), {
    caCertPem: unit.caCertPem,
    device: 'HN-CS-0001',
  });
  t.true(verdict.ok, JSON.stringify(verdict));
  // Key order and whitespace do not matter: the signature is over RFC 8785 canonical JSON.
  const pretty = JSON.stringify(
    { signature: doc.signature, profile: JSON.parse(canonicalize(doc.profile)) },
    null,
    2,
  );
  t.true(verifySignedProfile(pretty, { caCertPem: unit.caCertPem }).ok);
});

/** Signs without validating, as a careless or hostile signer could. */
const signRaw = (profile: Record<string, unknown>) =>
  JSON.stringify({
    profile,
    signature: {
      alg: 'RS256',
      certificate: unit.signerCertPem,
      value: cryptoSign('sha256', Buffer.from(canonicalize(profile)), unit.signerKeyPem).toString('base64'),
    },
  });

const refusals: Array<[string, () => Uint8Array | string, string, { currentVersion?: number }?]> = [
  ['unsigned', () => JSON.stringify({ profile: sampleProfile() }), 'PROFILE_UNSIGNED'],
  ['signed by another unit', () => sign(sampleProfile(), otherUnit), 'PROFILE_FOREIGN'],
  [
    'signed by a unit certificate that is not a profile signer',
    () => sign(sampleProfile(), notSigner),
    'PROFILE_FOREIGN',
  ],
  ['for another device', () => sign(sampleProfile('HN-CS-0002')), 'PROFILE_WRONG_DEVICE'],
  ['an older version', () => sign(sampleProfile('HN-CS-0001', 3)), 'PROFILE_ROLLBACK', { currentVersion: 4 }],
  ['the same version', () => sign(sampleProfile('HN-CS-0001', 4)), 'PROFILE_ROLLBACK', { currentVersion: 4 }],
  ['malformed JSON', () => '{"profile": {', 'PROFILE_INVALID'],
  [
    'signed but failing the schema',
    () => signRaw({ ...sampleProfile(), capture: { fps: 'fast' } }),
    'PROFILE_INVALID',
  ],
  [
    'too large',
    () => sign({ ...sampleProfile(), announcement: { text: 'x'.repeat(MAX_SIGNED_PROFILE_BYTES) } }),
    'PROFILE_TOO_LARGE',
  ],
  [
    'altered after signing',
    () => {
      const doc = JSON.parse(sign(sampleProfile()).toString()) as { profile: { officers: string[] } };
      doc.profile.officers = ['O-9999'];
      return JSON.stringify(doc);
    },
    'PROFILE_FOREIGN',
  ],
];

for (const [what, make, code, extra] of refusals) {
  test(`refused: ${what} → ${code}`, (t) => {
    const verdict = verifySignedProfile(make(), {
      caCertPem: unit.caCertPem,
      device: 'HN-CS-0001',
      ...extra,
    });
    t.false(verdict.ok);
    if (!verdict.ok) t.is<string, string>(verdict.code, code, verdict.message);
  });
}

test('an expired signer certificate is refused', (t) => {
  const verdict = verifySignedProfile(sign(sampleProfile()), {
    caCertPem: unit.caCertPem,
    now: new Date(Date.now() + 4000 * 86400_000), // past the signer's 10 years
  });
  t.false(verdict.ok);
  if (!verdict.ok) t.is(verdict.code, 'PROFILE_FOREIGN');
});

async function store(t: ExecutionContext) {
  const dir = tempDir(t);
  const { privateKey } = generateKeyPairSync('ed25519');
  const journal = await JournalWriter.open({
    path: join(dir, 'journal.jsonl'),
    device: 'HN-CS-0001',
    privateKey,
  });
  t.teardown(() => journal.close());
  const profileStore = new ProfileStore({
    path: join(dir, 'profile.signed.json'),
    device: 'HN-CS-0001',
    caCertPem: unit.caCertPem,
    journal,
  });
  const entries = () =>
    readFileSync(join(dir, 'journal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; body: Record<string, unknown> });
  return { dir, profileStore, entries };
}

test('the store applies newer profiles, refuses the rest with the reason journaled, and keeps the last good one', async (t) => {
  const { dir, profileStore, entries } = await store(t);
  t.is(profileStore.current(), null);
  const v2 = sign(sampleProfile('HN-CS-0001', 2));
  t.true((await profileStore.apply(v2)).ok);
  t.is(profileStore.currentVersion, 2);

  const bad: Array<[Uint8Array | string, string]> = [
    [JSON.stringify({ profile: sampleProfile('HN-CS-0001', 9) }), 'PROFILE_UNSIGNED'],
    [sign(sampleProfile('HN-CS-0001', 9), otherUnit), 'PROFILE_FOREIGN'],
    [sign(sampleProfile('HN-CS-0002', 9)), 'PROFILE_WRONG_DEVICE'],
    [sign(sampleProfile('HN-CS-0001', 1)), 'PROFILE_ROLLBACK'],
    ['not json', 'PROFILE_INVALID'],
    [Buffer.alloc(MAX_SIGNED_PROFILE_BYTES + 1, 0x20), 'PROFILE_TOO_LARGE'],
  ];
  for (const [bytes, code] of bad) {
    const verdict = await profileStore.apply(typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
    t.false(verdict.ok);
    if (!verdict.ok) t.is<string, string>(verdict.code, code);
  }
  t.is(profileStore.currentVersion, 2, 'the last good profile stays in force');
  t.deepEqual(readFileSync(join(dir, 'profile.signed.json')), Buffer.from(v2));

  const journal = entries();
  t.deepEqual(
    journal.map((e) => [e.kind, e.body.code ?? e.body.version]),
    [['profile-accepted', 2], ...bad.map(([, code]) => ['profile-refused', code])],
  );
  t.is(journal[3]!.body.device, 'HN-CS-0002');
  t.is(journal[3]!.body.version, 9);
  t.is(journal[3]!.body.inForce, 2);

  t.true((await profileStore.apply(sign(sampleProfile('HN-CS-0001', 3)))).ok);
  t.is(profileStore.currentVersion, 3);
  t.is(entries().at(-1)!.body.replaced, 2);
});
