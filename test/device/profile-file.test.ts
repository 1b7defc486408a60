import test from 'ava';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkEncoderElement, loadProfileFile, profileFileProblems } from '../../device/profile-file.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { parseProfile } from '../../protocol/schemas/profile.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';

const EXAMPLES = fileURLToPath(new URL('../../profiles/examples/', import.meta.url));
const exampleFiles = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));

test('every shipped example profile is valid', (t) => {
  t.deepEqual(exampleFiles.sort(), ['raspberry-pi.json', 'rockchip.json', 'sim.json']);
  for (const file of exampleFiles) {
    t.deepEqual(profileFileProblems(join(EXAMPLES, file)), [], file);
    t.is(loadProfileFile(join(EXAMPLES, file)).format, 'recorder-profile/1');
  }
  t.is(loadProfileFile(join(EXAMPLES, 'raspberry-pi.json')).capture.encoder, 'v4l2h264enc');
  t.is(loadProfileFile(join(EXAMPLES, 'rockchip.json')).capture.encoder, 'mpph264enc');
});

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every value in the document with its JSON Pointer, containers included. */
function* paths(value: Json, path = ''): Generator<[string, Json]> {
  if (path) yield [path, value];
  if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* paths(v, `${path}/${i}`);
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value))
      yield* paths(v, `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
}

function withValue(doc: Json, pointer: string, value: Json): Json {
  const copy = structuredClone(doc) as Record<string, Json>;
  const keys = pointer
    .slice(1)
    .split('/')
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  let node = copy as Record<string, Json>;
  for (const k of keys.slice(0, -1)) node = node[k] as Record<string, Json>;
  node[keys.at(-1)!] = value;
  return copy;
}

/** A value of another JSON type than `value`. */
function wrongType(value: Json): Json {
  if (typeof value === 'string') return 12345;
  if (typeof value === 'number') return 'not a number';
  if (typeof value === 'boolean') return 'yes';
  if (Array.isArray(value)) return 'not an array';
  return 'not an object';
}

test('every field of the wrong type is reported, naming the field', (t) => {
  let checked = 0;
  for (const file of exampleFiles) {
    const doc = JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as Json;
    for (const [pointer, value] of paths(doc)) {
      const error = t.throws(
        () => parseProfile(withValue(doc, pointer, wrongType(value))),
        undefined,
        `${file} ${pointer}`,
      );
      t.true(isRecorderError(error, 'PROFILE_INVALID'));
      const problems = (error as { context?: { problems?: { path: string }[] } }).context?.problems ?? [];
      t.true(
        problems.some((p) => p.path === pointer),
        `${file}: ${pointer} set to ${JSON.stringify(wrongType(value))} → ${JSON.stringify(problems)}`,
      );
      t.regex(error!.message, new RegExp(`  ${pointer.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
      checked++;
    }
  }
  t.log(`${checked} wrong-type fields checked`);
  t.true(checked > 100);
});

test('several problems are reported at once; a missing field and a missing key name the field', (t) => {
  const doc = JSON.parse(readFileSync(join(EXAMPLES, 'sim.json'), 'utf8')) as Record<string, unknown>;
  delete doc.unit;
  delete doc.centerPublicKey;
  (doc.capture as Record<string, unknown>).fps = 1000;
  const error = t.throws(() => parseProfile(doc));
  const paths = ((error as { context?: { problems?: { path: string }[] } }).context?.problems ?? []).map(
    (p) => p.path,
  );
  t.true(paths.includes('/unit'));
  t.true(paths.includes('/centerPublicKey'));
  t.true(paths.includes('/capture/fps'));
});

test('a center key that is not a usable RSA-3072 public key is reported at /centerPublicKey', (t) => {
  const doc = JSON.parse(readFileSync(join(EXAMPLES, 'sim.json'), 'utf8')) as Record<string, unknown>;
  doc.centerPublicKey = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n';
  const error = t.throws(() => parseProfile(doc));
  t.regex(error!.message, /\/centerPublicKey: cannot be read as a PEM public key/);
});

test('the on-device encoder check knows x264enc and names /capture/encoder for an unknown element', async (t) => {
  needPrograms('gst-inspect-1.0');
  await t.notThrowsAsync(checkEncoderElement('x264enc'));
  const error = await t.throwsAsync(checkEncoderElement('nosuchh264enc'));
  t.true(isRecorderError(error, 'PROFILE_ENCODER_UNKNOWN'));
  t.regex(error!.message, /^\/capture\/encoder: GStreamer element 'nosuchh264enc' is not installed/);
  const missing = await t.throwsAsync(
    checkEncoderElement('x264enc', { gstInspect: '/nonexistent/gst-inspect' }),
  );
  t.true(isRecorderError(missing, 'PROFILE_ENCODER_UNKNOWN'));
});

test('a profile file that is not JSON is one problem at /', (t) => {
  const path = join(tempDir(t), 'p.json');
  writeFileSync(path, '{"format": ');
  const problems = profileFileProblems(path);
  t.is(problems.length, 1);
  t.is(problems[0]!.path, '/');
  t.regex(problems[0]!.message, /not JSON/);
  t.true(
    isRecorderError(
      t.throws(() => loadProfileFile(path)),
      'PROFILE_INVALID',
    ),
  );
  t.true(
    isRecorderError(
      t.throws(() => loadProfileFile(join(tempDir(t), 'none.json'))),
      'FILE_NOT_FOUND',
    ),
  );
});
