import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flashDevice, uploadAndCommit } from '../../cli/flash.ts';
import { ServiceClient } from '../../cli/service-client.ts';
import { unitCaDeviceIssuer, type IssueDeviceCertificate } from '../../cli/unit-ca.ts';
import { createTlsKeyAndCsr, csrFor } from '../../device/identity.ts';
import { verifyJournalFile } from '../../device/journal-reader.ts';
import { loadPublicKey } from '../../device/keys.ts';
import { ServicePort } from '../../device/service-port.ts';
import { statePaths } from '../../device/state-paths.ts';
import { openSerialLink, type SerialLink, type SerialLinkOptions } from '../../hardware/serial-link.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { decodeServiceMessage, encodeServiceMessage } from '../../protocol/service-message.ts';
import { MAX_SIGNED_PROFILE_BYTES, encodeSignedProfile, signProfile } from '../../protocol/signed-profile.ts';
import { LineRelay, type LineOptions } from '../helpers/serial-line.ts';
import { startPtyPair, type PtyPair } from '../helpers/socat.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';
import { makeUnitCa, sampleProfile, type UnitCaFiles } from '../helpers/unit-ca.ts';

const base = mkdtempSync(join(tmpdir(), 'recorder-flash-ca-'));
const unit: UnitCaFiles = makeUnitCa(join(base, 'hn-cs'));
const otherUnit: UnitCaFiles = makeUnitCa(join(base, 'sx-xa'), { name: 'SX-XA' });
test.after.always(() => rmSync(base, { recursive: true, force: true }));

const signed = (profile: Record<string, unknown>, ca = unit) =>
  encodeSignedProfile(signProfile(profile, { keyPem: ca.signerKeyPem, certPem: ca.signerCertPem }));
/** A profile padded to many chunks, so a cable can be pulled in the middle of it. */
const bigProfile = (version: number) => ({
  ...sampleProfile('HN-CS-0001', version),
  announcement: { text: `执法记录仪已开始录音录像。${'Recording has started. '.repeat(800)}` },
});

interface Bench {
  state: string;
  device: ServicePort;
  deviceLink: SerialLink;
  relay: LineRelay;
  hostPair: PtyPair;
  dir: string;
  openHost(options?: SerialLinkOptions): Promise<SerialLink>;
}

/** device ── pty pair ── relay ── pty pair ── tool, all real ptys (socat). */
async function bench(t: ExecutionContext, line: LineOptions = {}, state?: string): Promise<Bench> {
  needPrograms('socat', 'openssl');
  const dir = tempDir(t);
  const devicePair = await startPtyPair(dir, 'dev');
  const b: Partial<Bench> & { hostPair: PtyPair } = { dir, hostPair: await startPtyPair(dir, 'host') };
  b.relay = await LineRelay.start(devicePair.b, b.hostPair.b, line);
  b.deviceLink = await openSerialLink({ path: devicePair.a, ackTimeoutMs: 250, baud: 2_000_000 });
  b.state = state ?? join(dir, 'state');
  b.device = await ServicePort.start({ link: b.deviceLink, paths: statePaths(b.state) });
  const hosts: SerialLink[] = [];
  b.openHost = async (options = {}) => {
    const link = await openSerialLink({ path: b.hostPair.a, ackTimeoutMs: 250, baud: 2_000_000, ...options });
    hosts.push(link);
    return link;
  };
  t.teardown(async () => {
    for (const h of hosts) await h.close();
    await b.device!.close();
    await b.deviceLink!.close();
    await b.relay!.stop();
    await devicePair.kill();
    await b.hostPair.kill();
  });
  return b as Bench;
}

function journal(state: string): Array<{ kind: string; body: Record<string, unknown> }> {
  return readFileSync(statePaths(state).journal, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; body: Record<string, unknown> });
}

async function journalIntact(t: ExecutionContext, state: string): Promise<void> {
  const paths = statePaths(state);
  const report = await verifyJournalFile(paths.journal, { publicKey: loadPublicKey(paths.publicKey) });
  t.true(report.ok, JSON.stringify(report.problems));
}

test.serial(
  'a factory-new device: identity from the unit CA, then the profile; a later flash only updates the profile',
  async (t) => {
    const b = await bench(t);
    const host = await b.openHost();
    const result = await flashDevice({
      link: host,
      signedProfile: signed(sampleProfile('HN-CS-0001', 1)),
      issueDeviceCertificate: unitCaDeviceIssuer(unit.dir),
      caCertPem: unit.caCertPem,
    });
    t.is(result.before.identity, 'none');
    t.is(result.before.device, null);
    t.true(result.identityInstalled);
    t.true(result.profileApplied);
    t.is(result.after.device, 'HN-CS-0001');
    t.is(result.after.identity, 'provisioned');
    t.is(result.after.profileVersion, 1);
    const paths = statePaths(b.state);
    // The device pinned the unit CA and holds a certificate for its own key and number.
    t.is(readFileSync(paths.caCert, 'utf8').trim(), unit.caCertPem.trim());
    t.regex(readFileSync(paths.tlsCert, 'utf8'), /BEGIN CERTIFICATE/);

    const update = await flashDevice({
      link: host,
      signedProfile: signed(sampleProfile('HN-CS-0001', 2, 'O-2002')),
    });
    t.false(update.identityInstalled, 'a provisioned device only gets the profile');
    t.is(update.after.profileVersion, 2);
    t.deepEqual(update.after.officers, ['O-2002']);
    t.deepEqual(
      journal(b.state).map((e) => e.kind),
      ['identity-assigned', 'identity-installed', 'profile-accepted', 'profile-accepted'],
    );
    await journalIntact(t, b.state);
  },
);

test.serial(
  'refusals over the service port, each journaled with its reason; the last good profile stays',
  async (t) => {
    const b = await bench(t);
    const host = await b.openHost();
    await flashDevice({
      link: host,
      signedProfile: signed(sampleProfile('HN-CS-0001', 5)),
      issueDeviceCertificate: unitCaDeviceIssuer(unit.dir),
    });
    const good = readFileSync(statePaths(b.state).profile);
    const client = new ServiceClient(host);
    const cases: Array<[string, Buffer, string]> = [
      [
        'unsigned',
        Buffer.from(JSON.stringify({ profile: sampleProfile('HN-CS-0001', 6) })),
        'PROFILE_UNSIGNED',
      ],
      ['signed by another unit', signed(sampleProfile('HN-CS-0001', 6), otherUnit), 'PROFILE_FOREIGN'],
      ['for another device', signed(sampleProfile('HN-CS-0002', 6)), 'PROFILE_WRONG_DEVICE'],
      ['older version', signed(sampleProfile('HN-CS-0001', 4)), 'PROFILE_ROLLBACK'],
      ['malformed', Buffer.from('{"profile": {"device": "HN-CS-0001", "version": 6'), 'PROFILE_INVALID'],
      ['too large', Buffer.alloc(MAX_SIGNED_PROFILE_BYTES + 1, 0x20), 'PROFILE_TOO_LARGE'],
    ];
    for (const [what, bytes, code] of cases) {
      const error = await t.throwsAsync(uploadAndCommit(client, 'profile', bytes), undefined, what);
      t.true(isRecorderError(error) && error.code === code, `${what}: ${String(error)}`);
    }
    t.deepEqual(readFileSync(statePaths(b.state).profile), good, 'the last good profile is in force');
    const refused = journal(b.state).filter((e) => e.kind === 'profile-refused');
    t.deepEqual(
      refused.map((e) => e.body.code),
      cases.map(([, , code]) => code),
    );
    for (const e of refused) t.true(String(e.body.reason).length > 10, 'each refusal says why');
    const hello = (await client.request('hello')).header;
    t.is(hello.profileVersion, 5);
    await journalIntact(t, b.state);
  },
);

test.serial('noise on the line (flipped bits, dropped bytes): the flash completes, whole', async (t) => {
  const b = await bench(t, { flipProbability: 1 / 4000, dropProbability: 1 / 4000, seed: 3 });
  const host = await b.openHost({ maxAttempts: 40, maxPayload: 1024 });
  const profile = signed(bigProfile(1));
  const result = await flashDevice({
    link: host,
    signedProfile: profile,
    issueDeviceCertificate: unitCaDeviceIssuer(unit.dir),
    chunkSize: 768,
  });
  t.is(result.after.profileVersion, 1);
  t.deepEqual(readFileSync(statePaths(b.state).profile), profile);
  t.true(
    b.relay.toDevice.flipped + b.relay.toDevice.dropped + b.relay.toHost.flipped + b.relay.toHost.dropped > 0,
  );
  t.true(
    host.stats.retransmissions + b.deviceLink.stats.retransmissions > 0,
    'damaged frames were sent again',
  );
  t.log(
    `noise: ${b.relay.toDevice.flipped + b.relay.toHost.flipped} flipped, ` +
      `${b.relay.toDevice.dropped + b.relay.toHost.dropped} dropped; retransmissions host ${host.stats.retransmissions}, ` +
      `device ${b.deviceLink.stats.retransmissions}; duplicates ${b.deviceLink.stats.duplicates + host.stats.duplicates}`,
  );
  await journalIntact(t, b.state);
});

test.serial(
  'a cable pulled mid-profile: the flash fails cleanly, the old profile stays, the next run resumes',
  async (t) => {
    const b = await bench(t);
    const first = await b.openHost({ maxAttempts: 5, ackTimeoutMs: 150, maxPayload: 1024 });
    await flashDevice({
      link: first,
      signedProfile: signed(sampleProfile('HN-CS-0001', 1)),
      issueDeviceCertificate: unitCaDeviceIssuer(unit.dir),
    });
    const v1 = readFileSync(statePaths(b.state).profile);
    const v2 = signed(bigProfile(2));
    const pulled = flashDevice({
      link: first,
      signedProfile: v2,
      chunkSize: 768,
      onProgress: (p) => {
        // Out with the cable once about half the profile has crossed.
        if (p.step === 'profile' && (p.sent ?? 0) > v2.length / 2) b.relay.cut = true;
      },
    });
    const error = await t.throwsAsync(pulled);
    t.true(isRecorderError(error, 'LINK_TIMEOUT'), String(error));
    t.deepEqual(readFileSync(statePaths(b.state).profile), v1, 'never half-applied: version 1 is in force');

    b.relay.cut = false;
    await first.close();
    const second = await b.openHost({ maxPayload: 1024 });
    const result = await flashDevice({ link: second, signedProfile: v2, chunkSize: 768 });
    t.true(result.resumedBytes > v2.length / 3, `resumed from ${result.resumedBytes} of ${v2.length} bytes`);
    t.deepEqual(readFileSync(statePaths(b.state).profile), v2);
    t.is(result.after.profileVersion, 2);
    await journalIntact(t, b.state);
  },
);

test.serial(
  'killing socat mid-identity: LINK_CLOSED, nothing half-installed; a new cable finishes the job',
  async (t) => {
    const b = await bench(t);
    const host = await b.openHost();
    const paths = statePaths(b.state);
    const pulled = flashDevice({
      link: host,
      signedProfile: signed(sampleProfile('HN-CS-0001', 1)),
      issueDeviceCertificate: async (csrPem, subject) => {
        const issued = await unitCaDeviceIssuer(unit.dir)(csrPem, subject);
        await b.hostPair.kill(); // the cable comes out just as the certificate is to be sent
        return issued;
      },
    });
    const error = await t.throwsAsync(pulled);
    t.true(isRecorderError(error, 'LINK_CLOSED') || isRecorderError(error, 'LINK_TIMEOUT'), String(error));
    t.false(existsSync(paths.tlsCert));
    t.false(existsSync(paths.profile));
    t.is(JSON.parse(readFileSync(paths.identity, 'utf8')).state, 'csr');

    // Plug a new cable (a new pty pair on the tool's side of the relay) and run again.
    const newPair = await startPtyPair(b.dir, 'host2');
    t.teardown(() => newPair.kill());
    await b.relay.attachHost(newPair.b);
    const link = await openSerialLink({ path: newPair.a, ackTimeoutMs: 250, baud: 2_000_000 });
    t.teardown(() => link.close());
    const result = await flashDevice({
      link,
      signedProfile: signed(sampleProfile('HN-CS-0001', 1)),
      issueDeviceCertificate: unitCaDeviceIssuer(unit.dir),
    });
    t.is(result.before.identity, 'csr', 'the device kept its key and CSR');
    t.is(result.after.identity, 'provisioned');
    t.is(result.after.profileVersion, 1);
    await journalIntact(t, b.state);
  },
);

test.serial(
  'a device restarted in maintenance mode keeps its identity; an applied but unjournaled profile is journaled as recovered',
  async (t) => {
    const b = await bench(t);
    const host = await b.openHost();
    await flashDevice({
      link: host,
      signedProfile: signed(sampleProfile('HN-CS-0001', 1)),
      issueDeviceCertificate: unitCaDeviceIssuer(unit.dir),
    });
    await b.device.close();
    // A power cut between the rename and the journal entry: version 2 in force, not journaled.
    const v2 = signed(sampleProfile('HN-CS-0001', 2));
    writeFileSync(statePaths(b.state).profile, v2);
    b.device = await ServicePort.start({ link: b.deviceLink, paths: statePaths(b.state) });
    const last = journal(b.state).at(-1)!;
    t.is(last.kind, 'profile-accepted');
    t.is(last.body.recovered, true);
    t.is(last.body.version, 2);
    const again = await flashDevice({ link: host, signedProfile: v2 });
    t.is(again.before.identity, 'provisioned');
    t.false(again.profileApplied, 'version 2 is already in force');
    await journalIntact(t, b.state);
  },
);

test.serial(
  'a certificate for another key, another device or from outside its chain is refused and journaled',
  async (t) => {
    const b = await bench(t);
    const host = await b.openHost();
    const strangerKey = (await createTlsKeyAndCsr('HN-CS-0001')).keyPem;
    const issuer = unitCaDeviceIssuer(unit.dir);
    const wrong: Array<[string, IssueDeviceCertificate]> = [
      ['another key', (_csr, s) => issuer(csrFor('HN-CS-0001', strangerKey), s)],
      [
        'another device',
        (_csr, s) => issuer(csrFor('HN-CS-0002', strangerKey), { ...s, device: 'HN-CS-0002' }),
      ],
      [
        'a chain it does not chain to',
        async (csr, s) => ({ ...(await issuer(csr, s)), chainPem: otherUnit.caCertPem }),
      ],
    ];
    for (const [what, issue] of wrong) {
      const error = await t.throwsAsync(
        flashDevice({
          link: host,
          signedProfile: signed(sampleProfile('HN-CS-0001', 1)),
          issueDeviceCertificate: issue,
        }),
      );
      t.true(isRecorderError(error, 'IDENTITY_INVALID'), `${what}: ${String(error)}`);
    }
    const paths = statePaths(b.state);
    t.false(existsSync(paths.tlsCert));
    t.false(existsSync(paths.profile));
    t.is(journal(b.state).filter((e) => e.kind === 'identity-refused').length, 3);
    // The right certificate still goes in afterwards.
    const ok = await flashDevice({
      link: host,
      signedProfile: signed(sampleProfile('HN-CS-0001', 1)),
      issueDeviceCertificate: issuer,
    });
    t.is(ok.after.identity, 'provisioned');
  },
);

test.serial(
  'at an emulated 115200 baud with the default link settings, a noisy line still flashes whole',
  async (t) => {
    const b = await bench(t, { bytesPerSecond: 11_520, flipProbability: 1 / 15000, seed: 11 });
    // Default timeouts (sized for 115200 baud and 4 KiB frames), as `recorder flash` uses them.
    const host = await openSerialLink({ path: b.hostPair.a });
    t.teardown(() => host.close());
    const profile = signed(bigProfile(1));
    const result = await flashDevice({
      link: host,
      signedProfile: profile,
      issueDeviceCertificate: unitCaDeviceIssuer(unit.dir),
    });
    t.deepEqual(readFileSync(statePaths(b.state).profile), profile);
    t.is(result.after.profileVersion, 1);
    t.log(
      `${profile.length} B profile; flipped ${b.relay.toDevice.flipped + b.relay.toHost.flipped} bits; ` +
        `retransmissions ${host.stats.retransmissions + b.deviceLink.stats.retransmissions}`,
    );
  },
);

test.serial('malformed requests get a coded answer and the device keeps serving', async (t) => {
  const b = await bench(t);
  const host = await b.openHost();
  const answers: Buffer[] = [];
  host.on('message', (m) => answers.push(m));
  await host.reset();
  for (const bad of [
    Buffer.from([0x00]),
    Buffer.from([0x00, 0x05, 0x7b]),
    encodeServiceMessage({ op: 'format-disk', id: 'x' }),
  ]) {
    await host.send(bad);
  }
  while (answers.length < 3) await new Promise((r) => setTimeout(r, 20));
  const headers = answers.map((a) => decodeServiceMessage(a).header);
  t.deepEqual(
    headers.map((h) => [h.ok, h.code]),
    [
      [false, 'SERVICE_PROTOCOL'],
      [false, 'SERVICE_PROTOCOL'],
      [false, 'SERVICE_PROTOCOL'],
    ],
  );
  t.regex(String(headers[2]!.message), /unknown command "format-disk"/);
  const hello = await new ServiceClient(host).request('hello');
  t.is(hello.header.identity, 'none');
});
