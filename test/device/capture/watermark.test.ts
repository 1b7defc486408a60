import test from 'ava';
import {
  DEFAULT_WATERMARK_TEMPLATE,
  formatPosition,
  isoLocalTime,
  watermarkText,
} from '../../../device/capture/watermark.ts';
import { WatermarkTicker } from '../../../device/capture/watermark-ticker.ts';

const NOW = Date.parse('2026-11-23T10:05:01.400Z');

test('time is ISO 8601 local time with the zone offset', (t) => {
  t.is(isoLocalTime(NOW, 'Asia/Shanghai'), '2026-11-23T18:05:01+08:00');
  t.is(isoLocalTime(NOW, 'UTC'), '2026-11-23T10:05:01+00:00');
  t.is(isoLocalTime(NOW, 'America/St_Johns'), '2026-11-23T06:35:01-03:30');
  t.is(isoLocalTime(Date.parse('2026-07-01T00:00:00Z'), 'Europe/Berlin'), '2026-07-01T02:00:00+02:00');
  // midnight uses 00, never 24
  t.is(isoLocalTime(Date.parse('2026-11-23T16:00:00Z'), 'Asia/Shanghai'), '2026-11-24T00:00:00+08:00');
});

test('position: five decimals with hemisphere letters, or NO FIX', (t) => {
  t.is(formatPosition({ lat: 28.227834, lon: 112.938851 }), '28.22783N 112.93885E');
  t.is(formatPosition({ lat: -33.8688, lon: -70.6693 }), '33.86880S 70.66930W');
  t.is(formatPosition(null), 'NO FIX');
  t.is(formatPosition(undefined), 'NO FIX');
  t.is(formatPosition({ lat: Number.NaN, lon: 1 }), 'NO FIX');
});

const base = {
  now: NOW,
  timeZone: 'Asia/Shanghai',
  device: 'HN-CS-0001',
  officer: '110123',
  fix: { lat: 28.22783, lon: 112.93885 },
  clockTrusted: true,
};

test('default template with every field and a trusted clock', (t) => {
  t.is(
    watermarkText(DEFAULT_WATERMARK_TEMPLATE, base),
    '2026-11-23T18:05:01+08:00 HN-CS-0001 110123 28.22783N 112.93885E',
  );
});

test('no fix and untrusted clock are shown', (t) => {
  t.is(
    watermarkText(DEFAULT_WATERMARK_TEMPLATE, { ...base, fix: null, clockTrusted: false }),
    '2026-11-23T18:05:01+08:00 HN-CS-0001 110123 NO FIX TIME UNSET',
  );
});

test('TIME UNSET is shown even when the template lacks {clock}', (t) => {
  t.is(
    watermarkText('{time} {device}', { ...base, clockTrusted: false }),
    '2026-11-23T18:05:01+08:00 HN-CS-0001 TIME UNSET',
  );
  t.is(watermarkText('{time} {device}', base), '2026-11-23T18:05:01+08:00 HN-CS-0001');
});

test('multi-line templates keep their lines; unknown placeholders stay literal', (t) => {
  t.is(
    watermarkText('{device} / {officer}\n{time} {clock}\n{position} {other}', base),
    'HN-CS-0001 / 110123\n2026-11-23T18:05:01+08:00\n28.22783N 112.93885E {other}',
  );
});

test('the ticker sets the text at start and on each following second', async (t) => {
  const texts: string[] = [];
  const ticker = new WatermarkTicker({
    setText: (text) => texts.push(text),
    template: '{time} {officer}',
    context: () => ({ timeZone: 'UTC', device: 'D', officer: 'O', fix: null, clockTrusted: true }),
  });
  ticker.start();
  await new Promise((r) => setTimeout(r, 2300));
  ticker.stop();
  const count = texts.length;
  await new Promise((r) => setTimeout(r, 1100));
  t.true(count >= 3 && count <= 4, `${count} updates in 2.3 s`);
  t.is(texts.length, count, 'no update after stop');
  t.is(new Set(texts).size, texts.length, 'each update shows a new second');
  t.regex(texts[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 O$/);
});
