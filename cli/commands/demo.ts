/**
 * `recorder demo` (what `npm start` runs): a simulated recorder in the terminal. Keys press the
 * buttons and a status line shows what the officer's device knows; `--script` runs the same
 * without a keyboard. It ends by verifying everything the recorder sealed, as an auditor would.
 */
import type { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createCenterKeyPair } from '../../device/center-keys.ts';
import { loadOrCreateSigningKey, loadPrivateKey } from '../../device/keys.ts';
import type { Fleet } from '../../protocol/schemas/fleet.ts';
import { startDemoStation, type DemoStation } from '../demo-station.ts';
import { loadGatewayConfig } from '../../gateway/config.ts';
import { EvidenceStore } from '../../gateway/evidence-store.ts';
import { admittedCas } from '../../gateway/device-certificate.ts';
import { verifyStore } from '../../gateway/evidence-verify.ts';
import { renderFleetTable } from '../fleet-table.ts';
import { buildSimProfile, loadProfileFile } from '../../device/profile-file.ts';
import { Recorder } from '../../device/recorder.ts';
import { verifyState } from '../../device/sealing/verify-state.ts';
import { statePaths } from '../../device/state-paths.ts';
import { createHardware, createStorage } from '../../hardware/factory.ts';
import type { ButtonName, PressKind } from '../../hardware/buttons.ts';
import { RecorderError } from '../../protocol/errors.ts';
import { EXIT_OK, EXIT_PROBLEMS } from '../output.ts';
import { simGnssOptions, statusLine } from './device.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

export const DEFAULT_SCRIPT = 'wait 8; record; wait 4; mark; photo; wait 3; stop; wait 3; dock; upload';

const KEYS: Record<string, [string, string]> = {
  r: ['record', 'record (short press)'],
  s: ['stop', 'stop (long press)'],
  d: ['double', 'stop (double press)'],
  m: ['mark', 'mark'],
  p: ['photo', 'photo'],
  a: ['audio', 'audio-only'],
  k: ['dock', 'dock'],
  u: ['undock', 'undock'],
  q: ['quit', 'quit'],
};

interface DemoOptions {
  state?: string;
  script?: string;
  gnssReplay?: string;
}

export function registerDemo(program: Command, run: Run): void {
  program
    .command('demo')
    .description('a simulated recorder in the terminal: press keys, watch the status, verify what was sealed')
    .option('--state <dir>', 'keep the state directory here (default: a new throwaway directory)')
    .option(
      '--script <steps>',
      `steps separated by ";": wait N, record, stop, double, mark, photo, audio, dock, undock, upload (wait until everything reached the station and the center) (default when not a terminal: "${DEFAULT_SCRIPT}")`,
    )
    .option(
      '--gnss-replay <nmea-log>',
      'the simulated GNSS receiver replays this log (e.g. ../shared/nmea/beidou-gb.log)',
    )
    .action((opts: DemoOptions) => run(() => demo(opts)));
}

async function demo(opts: DemoOptions): Promise<number> {
  const root = opts.state ? resolve(opts.state) : mkdtempSync(join(tmpdir(), 'recorder-demo-'));
  mkdirSync(root, { recursive: true });
  const say = (text: string) => process.stdout.write(`${text}\n`);
  const centerDir = join(root, 'center');
  if (!existsSync(join(centerDir, 'center.key.pem'))) createCenterKeyPair(centerDir);
  const profilePath = join(root, 'profile.json');
  if (!existsSync(profilePath)) {
    const profile = buildSimProfile({
      unit: 'HN-WJW',
      device: 'HN-CS-0001',
      officers: ['HN-0427'],
      centerPublicKeyPem: readFileSync(join(centerDir, 'center.pub.pem'), 'utf8'),
      stateDir: root,
      segmentSeconds: 2,
      prerecordSeconds: 6,
      postrecordSeconds: 2,
      width: 640,
      height: 360,
      fps: 15,
    });
    writeFileSync(profilePath, `${JSON.stringify(profile, null, 2)}\n`);
  }
  // The station: a gateway the recorder reports to, as on a collection station (issue 5).
  const paths = statePaths(root);
  const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  const base = loadProfileFile(profilePath);
  const station = await startDemoStation(root, base.unit, base.device, key.publicKeyPem);
  const profile = { ...base, gateway: station.deviceGateway };
  say(`state directory: ${root}`);
  say(`profile ${profilePath}: ${profile.unit}/${profile.device}, officer ${profile.officers[0]}, ` +
    `${profile.capture.width}x${profile.capture.height}@${profile.capture.fps}, ${profile.capture.segmentSeconds} s segments, ` +
    `${profile.capture.prerecordSeconds} s pre-record`); // prettier-ignore

  const hardware = await createHardware(profile.hardware, { log: say, ...simGnssOptions(opts.gnssReplay) });
  const recorder = await Recorder.start({
    profile,
    stateDir: root,
    hardware: { ...hardware, storage: createStorage(profile.storage.evidenceDir) },
  });
  recorder.on('log', (message: string) => {
    if (!message.startsWith('telemetry debug')) say(`rec:device ${message}`);
  });
  say(`station gateway ${station.gateway.url} (mutual TLS, unit CA in ${join(root, 'ca')})`);
  if (recorder.recovered) say(`recovered ${recorder.recovered} spool file(s) left by an earlier crash`);

  const interactive = !opts.script && process.stdin.isTTY === true;
  const fleetLine = () => fleetView(station.gateway.fleet(), base.device);
  try {
    if (interactive) await keyboard(recorder, fleetLine);
    else
      await script(recorder, opts.script ?? DEFAULT_SCRIPT, say, fleetLine, () =>
        waitForUploads(recorder, station, say),
      );
    say('');
    say('the station sees (recorder fleet watch):');
    say(renderFleetTable(station.gateway.fleet()));
  } finally {
    await recorder.stop();
    await station.close();
  }

  const centerKey = join(centerDir, 'center.key.pem');
  const report = await verifyState(root, { centerPrivateKey: loadPrivateKey(centerKey) });
  say('');
  const onDevice = report.segments - report.receipted;
  say(`verification: ${report.ok ? 'OK' : 'FAILED'} — ${report.entries} journal entries, chain intact: ${report.ok}; ` +
    `${report.segments} sealed items: ${report.receipted} receipted by the station and gone from the device, ` +
    `${report.decrypted} of ${onDevice} still on it decrypted, hashed and demuxed with the center key`); // prettier-ignore
  for (const p of report.problems)
    say(`  ${p.code} ${p.file ?? ''}${p.line ? ` line ${p.line}` : ''} ${p.message}`);
  const stores = await verifyDemoStores(station.configs);
  for (const line of stores.lines) say(line);
  say('check it yourself:');
  say(`  recorder journal verify ${paths.journal} --pubkey ${paths.publicKey}`);
  say(`  recorder verify --state ${root} --center-key ${centerKey}`);
  say(`  recorder decrypt --state ${root} --center-key ${centerKey} --out ${join(root, 'plaintext')}`);
  say(`  recorder evidence verify --config ${station.configs.station}`);
  say(`  recorder evidence list --config ${station.configs.center}`);
  const m = station.manager;
  say(
    `  (while a demo runs) mosquitto_sub -h 127.0.0.1 -p PORT --cafile ${m.ca} --cert ${m.cert} --key ${m.key} -i duty-desk:sub -t 'rec/v1/#' -v`,
  );
  return report.ok && stores.ok ? EXIT_OK : EXIT_PROBLEMS;
}

/**
 * The `upload` step: waits until the recorder holds nothing unreceipted and the station has relayed
 * everything to the center, with a progress bar over the bytes the recorder had pending.
 */
async function waitForUploads(recorder: Recorder, station: DemoStation, say: (line: string) => void) {
  const first = recorder.status();
  if (!first.uploads.enabled)
    throw new RecorderError('UPLOAD_NOT_CONFIGURED', first.uploads.note ?? 'uploads off');
  if (!first.docked) await recorder.dock();
  let total = first.pendingUploads.bytes;
  let done = 0;
  const bar = new SingleBar({
    format: '  upload [{bar}] {value}/{total} bytes, {items} item(s) left',
    stream: process.stdout,
    noTTYOutput: true,
    notTTYSchedule: 1000,
    hideCursor: true,
  });
  bar.start(Math.max(total, 1), 0, { items: first.pendingUploads.count });
  const deadline = Date.now() + 180_000;
  // Done when nothing is pending and nothing new was sealed for a while: the segment that straddles
  // the end of the post-record time is sealed after the recorder is back in standby.
  let sealed = first.segments.sealed;
  let quietSince = Date.now();
  try {
    for (;;) {
      const status = recorder.status();
      const now = status.pendingUploads;
      if (status.segments.sealed !== sealed) {
        sealed = status.segments.sealed;
        quietSince = Date.now();
      }
      // An item sealed meanwhile adds its bytes to the total instead of moving the bar back.
      done = Math.max(done, total - now.bytes);
      if (done + now.bytes > total) {
        total = done + now.bytes;
        bar.setTotal(total);
      }
      bar.update(done, { items: now.count });
      if (now.count === 0 && status.state !== 'stopping' && Date.now() - quietSince > 3000) break;
      if (Date.now() > deadline)
        throw new RecorderError('UPLOAD_TIMEOUT', `${now.count} item(s) still pending after 3 minutes`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    bar.stop();
  }
  const store = station.gateway.uploads.store;
  say(
    `  the station holds ${store.list({ device: recorder.status().device }).length} item(s), each receipted`,
  );
  while (store.unrelayed().length > 0) {
    if (Date.now() > deadline)
      throw new RecorderError(
        'RELAY_FAILED',
        `${store.unrelayed().length} item(s) not relayed to the center`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
  say(
    `  relayed to the center: ${station.center.uploads.store.list({}).length} item(s), plaintext checked at ingest`,
  );
  // The device's journal goes on too, and counts as relayed once the center has receipted it.
  const device = recorder.status().device;
  const journalRelayed = () => {
    const head = store.journalHead(device);
    const relayed = store.relayedJournalHead(device);
    return head !== null && relayed?.receipt != null && relayed.seq === head.seq ? relayed : null;
  };
  while (!journalRelayed()) {
    if (Date.now() > deadline)
      throw new RecorderError('RELAY_FAILED', `the journal of ${device} is not receipted by the center`);
    await new Promise((r) => setTimeout(r, 250));
  }
  say(`  the recorder's journal, lines 0–${journalRelayed()!.seq}: held at the center, receipted by it`);
}

/** `recorder evidence verify` at the station and at the center, on the stores the demo wrote. */
async function verifyDemoStores(configs: DemoStation['configs']): Promise<{ ok: boolean; lines: string[] }> {
  const lines: string[] = [];
  let ok = true;
  for (const [name, path] of Object.entries(configs)) {
    const config = loadGatewayConfig(path);
    const store = new EvidenceStore(config.evidence.dir);
    try {
      const receiptKey = createPublicKey(createPrivateKey(readFileSync(config.evidence.receiptKey)));
      const centerReceiptKey = config.upstream
        ? createPublicKey(readFileSync(config.upstream.receiptKey))
        : undefined;
      const report = await verifyStore(store, {
        role: config.evidence.role,
        receiptKey,
        ...(centerReceiptKey ? { centerReceiptKey } : {}),
        unitCas: admittedCas(config),
      });
      ok &&= report.ok;
      lines.push(
        `evidence at the ${name}: ${report.ok ? 'OK' : 'FAILED'} — ${report.items} item(s), ` +
          `${report.journalLines} journal line(s) of ${report.devices} device(s), every hash, chain and receipt checked`,
      );
      for (const p of report.problems)
        lines.push(`  ${p.code} ${p.device ?? '-'} ${p.id ?? '-'}: ${p.message}`);
    } finally {
      store.close();
    }
  }
  return { ok, lines };
}

async function act(recorder: Recorder, step: string): Promise<void> {
  const presses: Record<string, [ButtonName, PressKind]> = {
    record: ['record', 'short'],
    stop: ['record', 'long'],
    double: ['record', 'double'],
    mark: ['mark', 'short'],
    photo: ['photo', 'short'],
    audio: ['audio', 'short'],
  };
  if (presses[step]) {
    const [button, kind] = presses[step]!;
    await recorder.press(button, kind);
  } else if (step === 'dock') await recorder.dock();
  else if (step === 'undock') await recorder.undock();
  else throw new RecorderError('CLI_USAGE', `unknown demo step "${step}"`);
}

/** Runs `wait N; record; …`, printing each step and the status after it. */
export async function script(
  recorder: Recorder,
  text: string,
  say: (line: string) => void,
  fleetLine: () => string = () => '',
  upload: () => Promise<void> = async () => {
    throw new RecorderError('CLI_USAGE', 'this run has no station to upload to');
  },
): Promise<void> {
  const steps = text
    .split(/[;\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
  for (const step of steps) {
    const wait = /^wait\s+(\d+(?:\.\d+)?)$/.exec(step);
    if (!wait && step.startsWith('wait'))
      throw new RecorderError('CLI_USAGE', `"${step}": wait takes seconds, e.g. wait 5`);
    if (wait) {
      say(`> ${step}`);
      await new Promise((r) => setTimeout(r, Number(wait[1]) * 1000));
    } else if (step === 'upload') {
      say(`> ${step}`);
      await upload();
    } else {
      await act(recorder, step);
      say(`> ${step}`);
    }
    say(`  ${statusLine(recorder.status())}`);
    const seen = fleetLine();
    if (seen) say(`  station: ${seen}`);
  }
}

/** One device's row as the station's fleet monitor sees it. */
function fleetView(fleet: Fleet, device: string): string {
  const d = fleet.devices.find((x) => x.device === device);
  if (!d) return 'not seen yet';
  const alerts = d.alerts.length ? ` alerts: ${d.alerts.join(', ')}` : '';
  return `${d.device} ${d.online ? 'online' : 'offline'} ${d.state ?? '?'}, battery ${d.batteryPercent ?? '?'}%, ${d.pendingUploads ?? 0} pending upload(s)${alerts}`;
}

async function keyboard(recorder: Recorder, fleetLine: () => string): Promise<void> {
  const help = Object.entries(KEYS)
    .map(([key, [, what]]) => `${key}=${what}`)
    .join('  ');
  process.stdout.write(`keys: ${help}\n`);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  // One line, cut to the terminal's width, so \r can redraw it in place.
  const draw = () => {
    const line = `${statusLine(recorder.status())} || station: ${fleetLine()}`;
    process.stdout.write(`\r\x1b[2K${line.slice(0, Math.max(20, (process.stdout.columns ?? 120) - 1))}`);
  };
  const timer = setInterval(draw, 500);
  draw();
  try {
    await new Promise<void>((done) => {
      stdin.on('data', (key: string) => {
        const step = key === '\u0003' ? 'quit' : KEYS[key.toLowerCase()]?.[0];
        if (!step) return;
        if (step === 'quit') return done();
        void act(recorder, step).then(draw);
      });
    });
  } finally {
    clearInterval(timer);
    stdin.setRawMode(false);
    stdin.pause();
    process.stdout.write('\n');
  }
}
