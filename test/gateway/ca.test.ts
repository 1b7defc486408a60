import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import {
  caPaths,
  evidenceKeyFromCertificate,
  initCa,
  issueCertificate,
  revokeCertificate,
  revokedSerials,
  writeIssued,
} from '../../gateway/ca.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';

const evidenceKey = () =>
  generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;

function opensslVerify(ca: string, cert: string, crl?: string): { ok: boolean; out: string } {
  const args = ['verify', '-CAfile', ca, ...(crl ? ['-crl_check', '-CRLfile', crl] : []), cert];
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

test('ca init writes the agreed layout with private keys at 0600', (t) => {
  const dir = join(tempDir(t), 'ca');
  initCa(dir, { unit: 'HN-CS' });
  const p = caPaths(dir);
  for (const f of [p.cert, p.key, p.crl, p.serial, p.profileSignerCert, p.profileSignerKey])
    t.true(statSync(f).isFile(), f);
  t.is(statSync(p.key).mode & 0o777, 0o600);
  t.is(statSync(p.profileSignerKey).mode & 0o777, 0o600);
  t.true(statSync(join(p.issued, 'profile-signer-HN-CS-profiles.cert.pem')).isFile());
  t.regex(readFileSync(p.serial, 'utf8'), /^[0-9A-F]+\n$/);
  const ca = new X509Certificate(readFileSync(p.cert));
  t.true(ca.ca);
  t.regex(ca.subject, /O=HN-CS/);
  const signer = new X509Certificate(readFileSync(p.profileSignerCert));
  t.regex(signer.subject, /OU=profile-signer/);
  t.true(signer.verify(ca.publicKey));
  const error = t.throws(() => initCa(dir, { unit: 'HN-CS' }));
  t.true(isRecorderError(error, 'CA_EXISTS'));
});

test('issued certificates verify with openssl; a device certificate carries its evidence key', (t) => {
  needPrograms('openssl');
  const root = tempDir(t);
  const dir = join(root, 'ca');
  initCa(dir, { unit: 'HN-CS' });
  const evidence = evidenceKey();
  const device = issueCertificate(dir, { role: 'device', id: 'HN-CS-0001', evidencePublicKeyPem: evidence });
  const paths = writeIssued(join(root, 'out'), 'device', 'HN-CS-0001', device);
  t.is(statSync(paths.key!).mode & 0o777, 0o600);
  for (const role of ['manager', 'technician', 'gateway'] as const) {
    const issued = issueCertificate(dir, { role, id: `${role}-1` });
    const p = writeIssued(join(root, 'out'), role, `${role}-1`, issued);
    t.true(opensslVerify(p.ca, p.cert).ok, role);
  }
  t.true(opensslVerify(paths.ca, paths.cert).ok);
  t.true(opensslVerify(caPaths(dir).cert, caPaths(dir).profileSignerCert).ok);
  t.is(evidenceKeyFromCertificate(device.certPem), evidence);
  t.is(
    evidenceKeyFromCertificate(readFileSync(join(root, 'out', 'manager-manager-1.cert.pem'), 'utf8')),
    undefined,
  );
  const subject = execFileSync('openssl', ['x509', '-in', paths.cert, '-noout', '-subject', '-serial'], {
    encoding: 'utf8',
  });
  t.regex(subject, /OU ?= ?device/);
  t.regex(subject, new RegExp(`serial=${device.serial}`));
  // The private key matches the certificate.
  t.true(new X509Certificate(device.certPem).checkPrivateKey(createPrivateKey(device.keyPem!)));
});

test('a device certificate without an Ed25519 evidence key, a bad id or role is refused', (t) => {
  const dir = join(tempDir(t), 'ca');
  initCa(dir, { unit: 'HN-CS' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
    type: 'spki',
    format: 'pem',
  }) as string;
  for (const options of [
    { role: 'device' as const, id: 'HN-CS-0001' },
    { role: 'device' as const, id: 'HN-CS-0001', evidencePublicKeyPem: rsa },
    { role: 'device' as const, id: 'gateway', evidencePublicKeyPem: evidenceKey() },
    { role: 'manager' as const, id: 'a/b' },
    { role: 'manager' as const, id: '+' },
    { role: 'root' as never, id: 'x' },
  ]) {
    const error = t.throws(() => issueCertificate(dir, options));
    t.true(isRecorderError(error, 'CA_BAD_REQUEST'), JSON.stringify(options));
  }
});

test('a CSR is certified with its own key; a tampered CSR is refused', (t) => {
  const dir = join(tempDir(t), 'ca');
  initCa(dir, { unit: 'HN-CS' });
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
  csr.setSubject([{ shortName: 'CN', value: 'whatever the device says' }]);
  csr.sign(
    forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }) as string),
    forge.md.sha256.create(),
  );
  const csrPem = forge.pki.certificationRequestToPem(csr);
  const issued = issueCertificate(dir, {
    role: 'device',
    id: 'HN-CS-0009',
    csrPem,
    evidencePublicKeyPem: evidenceKey(),
  });
  t.is(issued.keyPem, undefined);
  const cert = new X509Certificate(issued.certPem);
  t.true(cert.checkPrivateKey(privateKey));
  t.regex(cert.subject, /CN=HN-CS-0009/); // the CA decides the subject, not the request
  // Flip one bit of the signature (the last byte of the DER): the request no longer verifies.
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 1]! ^= 1;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const error = t.throws(() => issueCertificate(dir, { role: 'manager', id: 'm', csrPem: tampered }));
  t.true(isRecorderError(error, 'CA_BAD_REQUEST'));
});

test('revoke writes a CRL that openssl verifies and that revokes exactly that serial', (t) => {
  needPrograms('openssl');
  const root = tempDir(t);
  const dir = join(root, 'ca');
  initCa(dir, { unit: 'HN-CS' });
  const a = writeIssued(join(root, 'a'), 'manager', 'a', issueCertificate(dir, { role: 'manager', id: 'a' }));
  const bIssued = issueCertificate(dir, { role: 'manager', id: 'b' });
  const b = writeIssued(join(root, 'b'), 'manager', 'b', bIssued);
  const crl = caPaths(dir).crl;
  t.true(opensslVerify(a.ca, b.cert, crl).ok, 'the empty CRL is valid');
  t.deepEqual([...revokedSerials(readFileSync(crl, 'utf8'))], []);
  revokeCertificate(dir, bIssued.serial);
  t.deepEqual([...revokedSerials(readFileSync(crl, 'utf8'))], [bIssued.serial]);
  const crlCheck = spawnSync('openssl', ['crl', '-in', crl, '-CAfile', a.ca, '-noout'], { encoding: 'utf8' });
  t.regex(crlCheck.stdout + crlCheck.stderr, /verify OK/);
  const revoked = opensslVerify(a.ca, b.cert, crl);
  t.false(revoked.ok);
  t.regex(revoked.out, /certificate revoked/);
  t.true(opensslVerify(a.ca, a.cert, crl).ok);
  const error = t.throws(() => revokeCertificate(dir, 'FFFF'));
  t.true(isRecorderError(error, 'CA_UNKNOWN_SERIAL'));
});
