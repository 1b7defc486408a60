/**
 * A unit CA directory for provisioning tests: made by the unit CA itself (gateway/ca.ts initCa, as
 * `recorder ca init` does), or, for the refusal tests that need a wrong signer (another key usage,
 * an expired certificate), built with the openssl CLI in the same layout.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initCa } from '../../gateway/ca.ts';
import { needPrograms } from './system.ts';

export interface UnitCaFiles {
  dir: string;
  caCertPem: string;
  signerCertPem: string;
  signerKeyPem: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a unit CA and its profile signer. `signerEku` lets a test make a non-signer leaf. */
export function makeUnitCa(
  dir: string,
  options: { name?: string; signerEku?: string; signerDays?: number } = {},
): UnitCaFiles {
  const name = options.name ?? 'HN-CS';
  if (options.signerEku === undefined && options.signerDays === undefined) {
    initCa(dir, { unit: name });
    return {
      dir,
      caCertPem: readFileSync(join(dir, 'ca.cert.pem'), 'utf8'),
      signerCertPem: readFileSync(join(dir, 'profile-signer.cert.pem'), 'utf8'),
      signerKeyPem: readFileSync(join(dir, 'profile-signer.key.pem'), 'utf8'),
    };
  }
  needPrograms('openssl');
  mkdirSync(dir, { recursive: true });
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key.pem',
      '-out',
      'ca.cert.pem',
      '-days',
      '30',
      '-subj',
      `/O=${name}/CN=${name} unit CA`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'profile-signer.key.pem',
      '-out',
      'signer.csr.pem',
      '-subj',
      `/O=${name}/CN=${name} profile signer`,
    ],
    dir,
  );
  writeFileSync(
    join(dir, 'signer.ext'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
      `extendedKeyUsage=${options.signerEku ?? 'codeSigning'}\n`,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'signer.csr.pem',
      '-CA',
      'ca.cert.pem',
      '-CAkey',
      'ca.key.pem',
      '-set_serial',
      '0x1001',
      '-days',
      String(options.signerDays ?? 30),
      '-extfile',
      'signer.ext',
      '-out',
      'profile-signer.cert.pem',
    ],
    dir,
  );
  writeFileSync(join(dir, 'serial'), '2000\n');
  writeFileSync(join(dir, 'revoked.json'), '[]\n');
  return {
    dir,
    caCertPem: readFileSync(join(dir, 'ca.cert.pem'), 'utf8'),
    signerCertPem: readFileSync(join(dir, 'profile-signer.cert.pem'), 'utf8'),
    signerKeyPem: readFileSync(join(dir, 'profile-signer.key.pem'), 'utf8'),
  };
}

const centerKey = generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey.export({
  type: 'spki',
  format: 'pem',
}) as string;

/** A valid simulated device profile (defaults filled by the schema). */
export function sampleProfile(
  device = 'HN-CS-0001',
  version = 1,
  officer = 'O-1001',
): Record<string, unknown> {
  return {
    format: 'recorder-profile/1',
    version,
    unit: 'HN-CS',
    device,
    officers: [officer],
    capture: { source: 'sim' },
    storage: { evidenceDir: '/var/lib/recorder/evidence', spoolDir: '/run/recorder/spool' },
    centerPublicKey: centerKey,
  };
}
