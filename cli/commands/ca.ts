import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  caPaths,
  initCa,
  issueCertificate,
  revokeCertificate,
  writeCrl,
  writeIssued,
  type CertificateRole,
} from '../../gateway/ca.ts';
import { RecorderError } from '../../protocol/errors.ts';
import { EXIT_OK } from '../output.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new RecorderError('FILE_NOT_FOUND', `cannot read ${what} ${path}`, { path });
  }
}

export function registerCa(program: Command, run: Run): void {
  const ca = program
    .command('ca')
    .description("the unit's certificate authority: issue and revoke certificates");
  ca.command('init')
    .description('create a unit CA, an empty CRL and the profile-signing certificate in DIR')
    .requiredOption('--dir <dir>', 'the CA directory (created)')
    .requiredOption(
      '--unit <unit>',
      'the unit, e.g. HN-CS (becomes O= of every certificate and the topic prefix)',
    )
    .action((opts: { dir: string; unit: string }) =>
      run(async () => {
        initCa(resolve(opts.dir), { unit: opts.unit });
        const p = caPaths(resolve(opts.dir));
        process.stdout.write(
          `CA for unit ${opts.unit} created:\n  certificate     ${p.cert}\n  private key     ${p.key} (0600)\n` +
            `  CRL             ${p.crl}\n  profile signer  ${p.profileSignerCert}\n`,
        );
        return EXIT_OK;
      }),
    );
  ca.command('issue')
    .description(
      'issue a certificate: writes ROLE-ID.key.pem (0600), ROLE-ID.cert.pem and ca.cert.pem into --out',
    )
    .requiredOption('--dir <dir>', 'the CA directory')
    .requiredOption('--role <role>', 'device | manager | technician | gateway')
    .requiredOption('--id <id>', 'device number or person/station id (becomes CN=)')
    .requiredOption('--out <dir>', 'where to write the key, certificate and CA chain')
    .option(
      '--evidence-key <pem>',
      "role device: the device's Ed25519 evidence public key (SPKI PEM), bound into the certificate",
    )
    .option('--csr <pem>', 'certify the key of this PKCS#10 request instead of making a new key')
    .option('--days <n>', 'validity in days', '825')
    .action(
      (opts: {
        dir: string;
        role: string;
        id: string;
        out: string;
        evidenceKey?: string;
        csr?: string;
        days: string;
      }) =>
        run(async () => {
          const days = Number(opts.days);
          if (!Number.isInteger(days) || days < 1)
            throw new RecorderError('CLI_USAGE', `--days must be a positive integer`);
          if (!['device', 'manager', 'technician', 'gateway'].includes(opts.role)) {
            throw new RecorderError(
              'CLI_USAGE',
              `--role must be device, manager, technician or gateway, got ${opts.role}`,
            );
          }
          const issued = issueCertificate(resolve(opts.dir), {
            role: opts.role as CertificateRole,
            id: opts.id,
            validDays: days,
            ...(opts.evidenceKey
              ? { evidencePublicKeyPem: readInput(opts.evidenceKey, 'the evidence key') }
              : {}),
            ...(opts.csr ? { csrPem: readInput(opts.csr, 'the CSR') } : {}),
          });
          const paths = writeIssued(resolve(opts.out), opts.role, opts.id, issued);
          process.stdout.write(
            `issued ${opts.role} ${opts.id}, serial ${issued.serial}:\n  certificate  ${paths.cert}\n` +
              (paths.key ? `  private key  ${paths.key} (0600)\n` : '') +
              `  CA chain     ${paths.ca}\n`,
          );
          return EXIT_OK;
        }),
    );
  ca.command('revoke')
    .description(
      'revoke a certificate by serial number (hex, as openssl x509 -serial prints it) and rewrite crl.pem',
    )
    .requiredOption('--dir <dir>', 'the CA directory')
    .requiredOption('--serial <hex>', 'the serial number')
    .action((opts: { dir: string; serial: string }) =>
      run(async () => {
        revokeCertificate(resolve(opts.dir), opts.serial);
        process.stdout.write(
          `revoked serial ${opts.serial.toUpperCase()}; ${caPaths(resolve(opts.dir)).crl} rewritten\n`,
        );
        return EXIT_OK;
      }),
    );
  ca.command('crl')
    .description('re-sign crl.pem with a fresh validity (a year); gateways refuse everyone once it expires')
    .requiredOption('--dir <dir>', 'the CA directory')
    .action((opts: { dir: string }) =>
      run(async () => {
        writeCrl(resolve(opts.dir));
        process.stdout.write(`${caPaths(resolve(opts.dir)).crl} re-signed, valid for 365 days\n`);
        return EXIT_OK;
      }),
    );
}
