/**
 * The recorder: wires the state machine to the hardware, the capture, the sealer and the journal.
 * Everything with I/O is passed in or opened here; the decisions live in state-machine.ts and
 * segment-router.ts.
 */
import { EventEmitter } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Battery, BatteryReading } from '../hardware/battery.ts';
import type { ButtonName, ButtonPress, ButtonSource, PressKind } from '../hardware/buttons.ts';
import type { GnssFix, GnssSource } from '../hardware/gnss.ts';
import type { Indicators } from '../hardware/indicators.ts';
import type { Storage, StorageReading } from '../hardware/storage.ts';
import type { RecorderError } from '../protocol/errors.ts';
import type { JournalEntry, JsonObject } from '../protocol/journal-entry.ts';
import type { Profile } from '../protocol/schemas/profile.ts';
import { CaptureSupervisor, type CaptureRestart, type ClosedSegment } from './capture/capture-supervisor.ts';
import { WatermarkTicker } from './capture/watermark-ticker.ts';
import { JournalWriter } from './journal-writer.ts';
import { loadOrCreateSigningKey, loadPublicKey } from './keys.ts';
import { MqttUploadLink } from '../protocol/upload-mqtt.ts';
import { UploadRunner } from './upload-runner.ts';
import { startSealing } from './sealing/sealing-service.ts';
import type { Sealer, SealMeta } from './sealing/sealer.ts';
import { assignSegment, pruneRing, type EventWindow } from './segment-router.ts';
import type { StateStore } from './state-store.ts';
import { statePaths, type StatePaths } from './state-paths.ts';
import { INITIAL_STATE, transition, type Effect, type Input, type RecorderState } from './state-machine.ts';
import { assessStorage } from './storage-guard.ts';
import { TelemetryClient, telemetryOptionsFromProfile } from './telemetry.ts';
import { ProfileStore } from './profile-store.ts';
import { createProfileReceiver, sectionsNeedingRestart } from './profile-receiver.ts';
import { toEvent, toStatus } from './telemetry-status.ts';
import { lowBatteryAlarm } from '../hardware/battery-estimate.ts';

export const FIRMWARE_VERSION = '0.1.0';

export interface RecorderHardware {
  buttons: ButtonSource;
  indicators: Indicators;
  gnss: GnssSource | null;
  battery: Battery;
  storage: Storage;
}

export interface RecorderOptions {
  profile: Profile;
  stateDir: string;
  hardware: RecorderHardware;
  /** wall clock, epoch ms; default Date.now */
  now?: () => number;
  /** IANA zone for the watermark; default Asia/Shanghai */
  timeZone?: string;
  /** how often storage is checked; default 5000 ms */
  storageCheckMs?: number;
  /** overrides passed to the capture supervisor */
  captureOptions?: Partial<ConstructorParameters<typeof CaptureSupervisor>[0]>;
  /** refuse a spool that is not on tmpfs (plaintext never on flash); default true */
  requireRamSpool?: boolean;
}

export interface RecorderStatus {
  device: string;
  unit: string;
  officer: string;
  state: RecorderState['mode'];
  event: string | null;
  audioOnly: boolean;
  marks: number;
  docked: boolean;
  fault: string | null;
  storage: {
    level: string;
    reason: string | null;
    freeBytes: number | null;
    totalBytes: number | null;
    evidenceBytes: number | null;
  };
  battery: BatteryReading | null;
  /** GA/T 947: sounds while at least 5 minutes of recording remain */
  batteryAlarm: boolean;
  gnss: GnssFix | null;
  clock: { source: 'gnss' | 'system'; offsetMs: number | null; trusted: boolean };
  /** `marked`: items of events with marks, which upload first (issue 6) */
  pendingUploads: { count: number; bytes: number; oldestDeadline: string | null; marked: number };
  /** issue 6: whether this profile uploads at all (a pinned receipt key), and whether it is now */
  uploads: { enabled: boolean; active: boolean; note: string | null };
  segments: { sealed: number; buffered: number };
  journal: { seq: number };
  profile: { id: string; version: number };
  firmware: string;
  /** the text burned into the video now */
  watermark: string;
}

interface SimulatedPower {
  setRecording(recording: boolean): void;
  setExternalPower(present: boolean): void;
}

interface TrackedEvent extends EventWindow {
  audioOnly: boolean;
  nextSegment: number;
  /** a mark was pressed during it (issue 6: its segments upload first) */
  marked: boolean;
}

const FIX_HISTORY_MS = 15 * 60_000;

export class Recorder extends EventEmitter {
  private state: RecorderState = INITIAL_STATE;
  private readonly events: TrackedEvent[] = [];
  private ring: ClosedSegment[] = [];
  private fixes: { at: number; fix: GnssFix }[] = [];
  private timers = new Map<string, NodeJS.Timeout>();
  private intervals: NodeJS.Timeout[] = [];
  private photoCount = 0;
  private sealedCount = 0;
  private lastStorage: StorageReading | null = null;
  private lastBattery: BatteryReading | null = null;
  private batteryAlarm = false;
  private telemetry: TelemetryClient | null = null;
  private uploads: UploadRunner | null = null;
  private uploadsNote: string | null = null;
  private work: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly now: () => number;
  private readonly watermark: WatermarkTicker;
  /** the profile in force; replaced when a newer signed profile arrives over the network (issue 7 item 4) */
  private profile: Profile;
  private profileStore: ProfileStore | null = null;
  /** spool files sealed with `recovered: true` at start */
  recovered = 0;

  private constructor(
    private readonly options: RecorderOptions,
    private readonly paths: StatePaths,
    private readonly journal: JournalWriter,
    private readonly store: StateStore,
    private readonly sealer: Sealer,
    private readonly capture: CaptureSupervisor,
  ) {
    super();
    this.profile = options.profile;
    this.now = options.now ?? Date.now;
    this.watermark = new WatermarkTicker({
      setText: (text) => this.capture.setOverlay(text),
      template: options.profile.watermark.template,
      now: this.now,
      context: () => {
        const fix = this.currentFix();
        return {
          timeZone: options.timeZone ?? 'Asia/Shanghai',
          device: options.profile.device,
          officer: this.officer,
          fix:
            fix && fix.mode >= 2 && fix.lat !== null && fix.lon !== null
              ? { lat: fix.lat, lon: fix.lon }
              : null,
          clockTrusted: this.clock().trusted,
        };
      },
    });
  }

  /** Opens keys, journal and state, recovers the spool, starts capture and hardware. */
  static async start(options: RecorderOptions): Promise<Recorder> {
    const { profile } = options;
    const paths = statePaths(options.stateDir);
    mkdirSync(paths.root, { recursive: true });
    const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
    const journal = await JournalWriter.open({
      path: paths.journal,
      device: profile.device,
      privateKey: key.privateKey,
    });
    await journal.append('power-on', {
      firmware: FIRMWARE_VERSION,
      profile: `${profile.unit}/${profile.device}`,
      profileVersion: profile.version,
      officer: profile.officers[0]!,
      signingKey: key.fingerprint,
    });
    let sealing;
    try {
      sealing = await startSealing({
        profile,
        stateDir: paths.root,
        journal,
        requireRamSpool: options.requireRamSpool ?? true,
      });
    } catch (error) {
      await journal.append('fault', {
        code: (error as RecorderError).code ?? 'INTERNAL',
        reason: (error as Error).message,
      });
      await journal.close();
      throw error;
    }
    const capture = new CaptureSupervisor({
      settings: profile.capture,
      spoolDir: sealing.spoolDir,
      ...options.captureOptions,
    });
    const recorder = new Recorder(options, paths, journal, sealing.state, sealing.sealer, capture);
    recorder.recovered = sealing.recovery.resealed.length;
    // Issue 7 item 4: a provisioned device (unit CA pinned) takes signed profiles over the network.
    if (existsSync(paths.caCert)) {
      recorder.profileStore = new ProfileStore({
        path: paths.profile,
        device: profile.device,
        caCertPem: readFileSync(paths.caCert, 'utf8'),
        journal,
        now: () => new Date(recorder.now()),
      });
    }
    recorder.startTelemetry();
    await recorder.wire();
    return recorder;
  }

  private async wire(): Promise<void> {
    const { hardware } = this.options;
    hardware.buttons.on('press', (press: ButtonPress) => this.input({ type: 'press', press }));
    hardware.gnss?.on('fix', (fix: GnssFix) => this.onFix(fix));
    this.capture.on('segment', (segment: ClosedSegment) => this.serial(() => this.onSegment(segment)));
    this.capture.on('restart', (restart: CaptureRestart) =>
      this.serial(() =>
        this.append(
          'capture-restart',
          pick(restart as unknown as Record<string, unknown>, ['reason', 'attempt', 'code', 'signal']),
        ),
      ),
    );
    this.capture.on('fault', (error: Error) =>
      this.input({ type: 'fault', reason: `capture: ${error.message}` }),
    );
    this.capture.on('error', (error: Error) => this.emit('log', `capture error: ${error.message}`));

    await hardware.buttons.start();
    await hardware.gnss?.start();
    for (const effect of transition(this.state, { type: 'recovered' }, this.ctx()).effects)
      await this.perform(effect);
    this.applyIndicators();
    await this.checkStorage();
    this.intervals.push(setInterval(() => void this.checkStorage(), this.options.storageCheckMs ?? 5000));
    this.watermark.start();
    await this.capture.start();
  }

  /** Appends to the journal and tells listeners (telemetry events) about the entry. */
  private async append(kind: string, body: JsonObject): Promise<JournalEntry> {
    const entry = await this.journal.append(kind, body);
    this.emit('entry', entry);
    return entry;
  }

  /**
   * When the profile names a station gateway: retained status, availability with a last will,
   * events for the entries a device manager should hear about, and commands with replies.
   */
  private startTelemetry(): void {
    const { profile } = this;
    const store = this.profileStore;
    const options = telemetryOptionsFromProfile(
      profile,
      () => toStatus(this.status(), this.profile, new Date(this.now())),
      {
        ...(store
          ? {
              onProfile: createProfileReceiver({
                store,
                path: this.paths.profile,
                onApplied: (next) =>
                  this.serial(() => this.profileApplied(next)).then(() => this.restartNeeded),
              }),
            }
          : {}),
        handlers: {
          locate: async (command) => {
            const seconds = command.args?.seconds ?? 10;
            const { indicators } = this.options.hardware;
            indicators.set('buzzer', { pulseMs: 300, times: Math.max(1, Math.round(seconds)) });
            indicators.set('led-status', 'blink-fast');
            setTimeout(() => indicators.set('led-status', 'off'), seconds * 1000).unref();
            await this.serial(() => this.append('locate', { seconds, by: command.id }));
            return { seconds };
          },
          'sync-time': async (command) => {
            const reference = command.args?.time;
            const offsetMs = reference ? Date.parse(reference) - this.now() : 0;
            await this.serial(() => this.append('clock-sync', { reference: reference ?? null, offsetMs }));
            return { offsetMs };
          },
        },
        log: (level, msg) => this.emit('log', `telemetry ${level}: ${msg}`),
      },
    );
    if (!options) return;
    this.telemetry = new TelemetryClient(options);
    this.on('entry', (entry: JournalEntry) => {
      const event = toEvent(entry);
      if (event && this.telemetry?.connected) {
        this.telemetry
          .publishEvent(event)
          .catch((error: Error) => this.emit('log', `event not sent: ${error.message}`));
      }
    });
    this.telemetry.start();
    this.startUploads(this.telemetry);
  }

  /**
   * Issue 6: uploads over the telemetry connection, while docked. Off (and said so in the status)
   * when the profile pins no receipt key: a receipt nobody can check must never delete evidence.
   */
  private startUploads(telemetry: TelemetryClient): void {
    const { profile } = this.options;
    const gateway = profile.gateway!;
    if (!gateway.receiptKey) {
      this.uploadsNote = 'uploads off: the profile pins no gateway receipt key (gateway.receiptKey)';
      return;
    }
    let gatewayKey;
    try {
      gatewayKey = loadPublicKey(gateway.receiptKey);
    } catch (error) {
      this.uploadsNote = `uploads off: ${(error as Error).message}`;
      this.emit('log', this.uploadsNote);
      return;
    }
    const link = new MqttUploadLink({
      client: telemetry.mqttClient!,
      direct: telemetry.mqttClient!,
      unit: profile.unit,
      device: profile.device,
    });
    const writer = this.journal;
    const runner = new UploadRunner({
      link,
      device: profile.device,
      evidenceDir: profile.storage.evidenceDir,
      journalPath: this.paths.journal,
      gatewayKey,
      store: this.store,
      journal: {
        append: (kind, body) =>
          new Promise<JournalEntry>((resolve, reject) => {
            this.serial(async () => resolve(await this.append(kind, body))).catch(reject);
          }),
        get head() {
          return writer.head;
        },
      },
      chunkBytes: gateway.upload?.chunkBytes ?? 262_144,
      window: gateway.upload?.window ?? 8,
      log: (msg) => this.emit('log', msg),
    });
    runner.on('round', (result: { receipted: string[]; failed: unknown[] }) =>
      this.emit('upload-round', result),
    );
    this.uploads = runner;
    telemetry.on('connect', () => {
      // The session is clean: subscribe the reply topics again on every connection.
      link.start().then(
        () => runner.setConnected(true),
        (error: Error) => this.emit('log', `upload replies not subscribed: ${error.message}`),
      );
    });
    telemetry.on('close', () => runner.setConnected(false));
    this.on('sealed', () => runner.kick());
    runner.setDocked(this.state.docked);
  }

  private restartNeeded: string[] = [];

  /**
   * A newer signed profile is in force (ProfileStore journaled it): officers, announcement and
   * reminder apply at once (the watermark and status show the new officer from the next tick);
   * any other changed section needs a restart, which is journaled (`profile-restart-needed`).
   */
  private async profileApplied(next: Profile): Promise<void> {
    const previous = this.profile;
    this.restartNeeded = sectionsNeedingRestart(previous, next);
    this.profile = next;
    if (previous.officers[0] !== next.officers[0]) {
      await this.append('officer-assigned', {
        officer: next.officers[0]!,
        previous: previous.officers[0]!,
        version: next.version,
      });
    }
    if (this.restartNeeded.length > 0) {
      await this.append('profile-restart-needed', { version: next.version, sections: this.restartNeeded });
    }
    this.emit('profile', next);
    void this.telemetry?.publishStatus(true).catch(() => undefined);
  }

  // ---- inputs ------------------------------------------------------------------------------

  /** A simulated press from the control socket or the terminal demo, through the same path as GPIO. */
  press(button: ButtonName, kind: PressKind = 'short'): Promise<void> {
    return this.input({ type: 'press', press: { button, kind, at: this.now() } });
  }

  dock(): Promise<void> {
    return this.input({ type: 'dock' });
  }

  undock(): Promise<void> {
    return this.input({ type: 'undock' });
  }

  /** Feeds one input through the state machine and performs its effects, one input at a time. */
  input(input: Input): Promise<void> {
    return this.serial(async () => {
      if (this.stopped) return;
      const result = transition(this.state, input, this.ctx());
      this.state = result.state;
      for (const effect of result.effects) await this.perform(effect);
      // A simulated battery drains while recording and charges when docked.
      const battery = this.options.hardware.battery as Partial<SimulatedPower>;
      battery.setRecording?.(this.state.mode === 'recording' || this.state.mode === 'stopping');
      battery.setExternalPower?.(this.state.docked);
      this.uploads?.setDocked(this.state.docked);
      this.emit('state', this.state);
    });
  }

  private serial(task: () => Promise<unknown>): Promise<void> {
    const run = this.work.then(task);
    this.work = run.catch((error: Error) => this.emit('log', `error: ${error.message}`));
    return run.then(
      () => undefined,
      (error: Error) => {
        throw error;
      },
    );
  }

  private ctx() {
    const now = this.now();
    return { now, newEventId: () => `${this.profile.device}-${compactTime(now)}` };
  }

  // ---- effects -----------------------------------------------------------------------------

  private async perform(effect: Effect): Promise<void> {
    const { profile } = this;
    switch (effect.type) {
      case 'journal':
        await this.append(effect.kind, effect.body as JsonObject);
        this.emit('journal', effect.kind);
        return;
      case 'indicator':
        this.options.hardware.indicators.set(effect.name, effect.pattern);
        return;
      case 'announce': {
        // R4 / SX 17: tell the other party before recording. Simulation: a file sink.
        const text = profile.announcement.text;
        appendFileSync(
          join(this.paths.root, 'announcements.log'),
          `${new Date(this.now()).toISOString()} ${text}\n`,
        );
        this.options.hardware.indicators.set('buzzer', { pulseMs: 200, times: 2 });
        await this.append('announcement', { text });
        return;
      }
      case 'start-event': {
        const tracked: TrackedEvent = {
          id: effect.event.id,
          pressedAt: effect.event.startedAt,
          prerecordMs: effect.prerecord ? profile.capture.prerecordSeconds * 1000 : 0,
          endedAt: null,
          audioOnly: effect.event.audioOnly,
          nextSegment: 0,
          marked: false,
        };
        this.events.push(tracked);
        await this.append('record-start', {
          event: tracked.id,
          prerecordSeconds: effect.prerecord ? profile.capture.prerecordSeconds : 0,
          audioOnly: tracked.audioOnly,
          officer: this.officer,
          continues: effect.event.continues,
        });
        // Promote the buffered segments that fall inside the pre-record window, oldest first.
        const keep: ClosedSegment[] = [];
        for (const segment of this.ring) {
          if (assignSegment(segment, [tracked])) await this.sealSegment(segment, tracked);
          else keep.push(segment);
        }
        this.ring = keep;
        // Audio-only (privacy): the camera stops for the event; pre-record stays as it was buffered.
        if (tracked.audioOnly) await this.switchCapture('audio');
        return;
      }
      case 'stop-event':
        await this.append('record-stop', {
          event: effect.event.id,
          postrecordSeconds: profile.capture.postrecordSeconds,
        });
        return;
      case 'end-event': {
        const tracked = this.events.find((e) => e.id === effect.event.id);
        if (tracked) tracked.endedAt = this.now();
        await this.append('event-end', {
          event: effect.event.id,
          segments: tracked?.nextSegment ?? 0,
        });
        if (effect.event.audioOnly) await this.switchCapture('av');
        return;
      }
      case 'mark': {
        await this.append('mark', {
          event: effect.event.id,
          index: effect.index,
          at: new Date(this.now()).toISOString(),
          position: positionText(this.currentFix()),
        });
        const tracked = this.events.find((e) => e.id === effect.event.id);
        if (tracked) tracked.marked = true;
        await this.markForUpload(effect.event.id);
        return;
      }
      case 'photo':
        await this.takePhoto(effect.event?.id ?? null);
        return;
      case 'timer':
        this.timer(effect.name, effect.action);
        return;
    }
  }

  private timer(name: 'postrecord' | 'max-length' | 'reminder', action: 'start' | 'cancel'): void {
    const existing = this.timers.get(name);
    if (existing) clearTimeout(existing);
    this.timers.delete(name);
    if (action === 'cancel') return;
    const c = this.profile.capture;
    if (name === 'postrecord') {
      this.timers.set(
        name,
        setTimeout(() => void this.input({ type: 'postrecord-elapsed' }), c.postrecordSeconds * 1000),
      );
    } else if (name === 'max-length') {
      this.timers.set(
        name,
        setTimeout(() => void this.input({ type: 'max-length-reached' }), c.maxEventMinutes * 60_000),
      );
    } else if (this.profile.reminderMinutes > 0) {
      const every = this.profile.reminderMinutes * 60_000;
      const tick = () => {
        this.options.hardware.indicators.set('vibration', { pulseMs: 200, times: 2 });
        void this.serial(() => this.append('reminder', { event: this.state.event?.id ?? null }));
        this.timers.set(name, setTimeout(tick, every));
      };
      this.timers.set(name, setTimeout(tick, every));
    }
  }

  // ---- segments ----------------------------------------------------------------------------

  private async onSegment(segment: ClosedSegment): Promise<void> {
    const assignment = assignSegment(segment, this.events);
    const event = assignment && this.events.find((e) => e.id === assignment.event);
    if (event) {
      await this.sealSegment(segment, event);
    } else {
      this.ring.push(segment);
      const [keep, drop] = pruneRing(this.ring, this.now(), this.profile.capture.prerecordSeconds * 1000);
      this.ring = keep;
      // Pre-record buffer that no press claimed is not evidence: it is discarded, as R2 intends.
      for (const old of drop) unlinkQuiet(old.path);
    }
    // Forget events whose window closed before this segment started: no later segment can join them.
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if (e.endedAt !== null && e.endedAt <= segment.startMs) this.events.splice(i, 1);
    }
  }

  private async sealSegment(segment: ClosedSegment, event: TrackedEvent): Promise<void> {
    const reason = segment.endMs <= event.pressedAt ? 'prerecord' : 'recording';
    const meta: SealMeta = {
      event: event.id,
      segment: event.nextSegment++,
      reason,
      start: new Date(segment.startMs),
      end: new Date(segment.endMs),
      runningStartMs: nsToMs(segment.startRunningTimeNs),
      runningEndMs: nsToMs(segment.endRunningTimeNs),
      officer: this.officer,
      fixes: this.fixesBetween(segment.startMs, segment.endMs),
      mediaType: 'video/mp2t',
    };
    try {
      await this.sealer.seal(segment.path, meta);
      this.sealedCount++;
      // The store drops a marked event once none of its items is queued: an upload while the
      // event goes on must not cost its later segments their priority.
      if (event.marked) await this.markForUpload(event.id);
      this.emit('sealed', meta);
    } catch (error) {
      // The plaintext stays in the spool; recovery at the next start seals it (never lost).
      await this.append('seal-failed', {
        event: event.id,
        segment: meta.segment,
        spool: segment.path,
        code: (error as RecorderError).code ?? 'INTERNAL',
      });
      this.emit('log', `sealing ${segment.path} failed: ${(error as Error).message}`);
    }
  }

  private async takePhoto(eventId: string | null): Promise<void> {
    try {
      const path = await this.capture.snapshot();
      const at = new Date(this.now());
      await this.sealer.seal(path, {
        event: eventId ?? `${this.profile.device}-photo-${compactTime(at.getTime())}`,
        segment: this.photoCount++,
        reason: 'recording',
        start: at,
        end: at,
        runningStartMs: 0,
        runningEndMs: 0,
        officer: this.officer,
        fixes: this.fixesBetween(at.getTime() - 5000, at.getTime()),
        mediaType: 'image/jpeg',
      });
      this.sealedCount++;
      if (eventId && this.events.find((e) => e.id === eventId)?.marked) await this.markForUpload(eventId);
    } catch (error) {
      await this.append('photo-failed', { code: (error as RecorderError).code ?? 'INTERNAL' });
      this.emit('log', `photo failed: ${(error as Error).message}`);
    }
  }

  /**
   * Issue 6: the event's queued items upload before those of unmarked events. The journal's `mark`
   * entry is the record: should this state write fail (or a crash come first), start-up recovery
   * rebuilds the mark set from the journal, so the failure is logged and nothing else.
   */
  private async markForUpload(event: string): Promise<void> {
    try {
      await this.store.markEvent(event);
    } catch (error) {
      this.emit('log', `mark of ${event} not in the state file yet: ${(error as Error).message}`);
    }
  }

  /**
   * Restarts the capture in the other mode. The segment open now is closed and sealed first (the
   * supervisor emits it during stop), so nothing recorded is lost; the switch leaves a gap of about
   * the pipeline's start time, journaled.
   */
  private async switchCapture(mode: 'av' | 'audio'): Promise<void> {
    if (this.capture.captureMode === mode) return;
    await this.capture.stop();
    const ready = await this.capture.start(mode);
    await this.append('capture-mode', { mode, runId: ready.runId });
  }

  // ---- GNSS, watermark, storage -------------------------------------------------------------

  private onFix(fix: GnssFix): void {
    const at = this.now();
    this.fixes.push({ at, fix });
    while (this.fixes.length && this.fixes[0]!.at < at - FIX_HISTORY_MS) this.fixes.shift();
  }

  private currentFix(): GnssFix | null {
    return this.options.hardware.gnss?.fix ?? null;
  }

  private fixesBetween(fromMs: number, toMs: number): GnssFix[] {
    return this.fixes.filter((f) => f.at >= fromMs && f.at <= toMs && f.fix.mode >= 2).map((f) => f.fix);
  }

  private clock(): RecorderStatus['clock'] {
    const offset = this.options.hardware.gnss?.clockOffsetMs ?? null;
    // GA/T 947: at most 3 s of drift. Without a GNSS time the clock is not known to be right.
    return {
      source: offset === null ? 'system' : 'gnss',
      offsetMs: offset,
      trusted: offset !== null && Math.abs(offset) <= 3000,
    };
  }

  private async checkStorage(): Promise<void> {
    try {
      this.lastStorage = await this.options.hardware.storage.read();
      this.lastBattery = await this.options.hardware.battery.read();
    } catch (error) {
      this.emit('log', `storage/battery read failed: ${(error as Error).message}`);
      return;
    }
    await this.checkBattery(this.lastBattery);
    const verdict = assessStorage(this.lastStorage, this.profile.storage);
    if (verdict.level !== this.state.storage || (verdict.reason || null) !== this.state.storageReason) {
      await this.input({ type: 'storage', level: verdict.level, reason: verdict.reason || null });
    }
  }

  /** GA/T 947: warn while at least 5 minutes of recording remain, from the estimate, not a percentage. */
  private async checkBattery(reading: BatteryReading): Promise<void> {
    const verdict = lowBatteryAlarm(reading, { minMinutes: 5 });
    if (verdict.alarm === this.batteryAlarm) return;
    this.batteryAlarm = verdict.alarm;
    const { indicators } = this.options.hardware;
    if (verdict.alarm) {
      indicators.set('buzzer', { pulseMs: 400, times: 3 });
      indicators.set('vibration', { pulseMs: 400, times: 3 });
      indicators.set('led-power', 'blink-fast');
    } else {
      indicators.set('led-power', this.state.docked ? 'blink-slow' : 'on');
    }
    await this.serial(() =>
      this.append(verdict.alarm ? 'battery-low' : 'battery-ok', {
        minutesLeft: verdict.minutesLeft,
        capacity: reading.capacity === null ? null : Math.round(reading.capacity),
        reason: verdict.reason,
      }),
    );
  }

  private applyIndicators(): void {
    this.options.hardware.indicators.set('led-power', 'on');
  }

  // ---- status and shutdown ------------------------------------------------------------------

  get officer(): string {
    return this.profile.officers[0]!;
  }

  status(): RecorderStatus {
    const { profile } = this;
    const queue = this.store.data.uploadQueue;
    const oldest = queue.map((i) => i.deadline).sort()[0] ?? null;
    return {
      device: profile.device,
      unit: profile.unit,
      officer: this.officer,
      state: this.state.mode,
      event: this.state.event?.id ?? null,
      audioOnly: this.state.event?.audioOnly ?? false,
      marks: this.state.marks,
      docked: this.state.docked,
      fault: this.state.fault,
      storage: {
        level: this.state.storage,
        reason: this.state.storageReason,
        freeBytes: this.lastStorage?.freeBytes ?? null,
        totalBytes: this.lastStorage?.totalBytes ?? null,
        evidenceBytes: this.lastStorage?.evidenceBytes ?? null,
      },
      battery: this.lastBattery,
      batteryAlarm: this.batteryAlarm,
      gnss: this.currentFix(),
      clock: this.clock(),
      pendingUploads: {
        count: queue.length,
        bytes: queue.reduce((n, i) => n + i.bytes, 0),
        oldestDeadline: oldest,
        marked: queue.filter((i) => this.store.isMarked(i)).length,
      },
      uploads: {
        enabled: this.uploads !== null,
        active: this.uploads?.active ?? false,
        note: this.uploads ? null : (this.uploadsNote ?? 'uploads off: the profile names no gateway'),
      },
      segments: { sealed: this.sealedCount, buffered: this.ring.length },
      journal: { seq: this.journal.head.nextSeq - 1 },
      profile: { id: `${profile.unit}/${profile.device}`, version: profile.version },
      firmware: FIRMWARE_VERSION,
      watermark: this.watermark.text(),
    };
  }

  /**
   * Clean stop (SIGINT/SIGTERM): the capture finalizes its open segment, which is sealed if it
   * belongs to an event; a recording in progress is journaled as interrupted by the shutdown.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.watermark.stop();
    for (const i of this.intervals) clearInterval(i);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.capture.stop();
    await this.work.catch(() => undefined);
    // Pre-record buffer no press claimed is not evidence; after a clean stop nothing may be left
    // for start-up recovery to mistake for an interrupted recording.
    for (const segment of this.ring) unlinkQuiet(segment.path);
    this.ring = [];
    if (this.uploads) {
      this.emit('log', 'stopping uploads after the chunks in flight');
      await this.uploads.stop();
    }
    if (this.telemetry) {
      this.emit('log', 'telemetry: saying offline');
      await this.telemetry.stop();
    }
    this.emit('log', 'journal: power-off');
    this.stopped = true;
    if (this.state.event) {
      await this.append('event-end', { event: this.state.event.id, cause: 'shutdown' });
    }
    await this.append('power-off', { reason: 'stop' });
    await this.options.hardware.buttons.stop();
    await this.options.hardware.gnss?.stop();
    await this.options.hardware.indicators.close();
    await this.journal.close();
  }
}

function pick(source: Record<string, unknown>, keys: string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of keys) {
    const v = source[k];
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v)))
      out[k] = v;
    else if (v === null) out[k] = null;
  }
  return out;
}

function nsToMs(ns: string): number {
  return Number(BigInt(ns) / 1_000_000n);
}

function compactTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

function positionText(fix: GnssFix | null): string {
  if (!fix || fix.mode < 2 || fix.lat === null || fix.lon === null) return 'NO FIX';
  return `${fix.lat.toFixed(7)},${fix.lon.toFixed(7)}`;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
