import test from 'ava';
import { chmodSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { sign, verify } from 'node:crypto';
import { isRecorderError } from '../../protocol/errors.ts';
import { loadOrCreateSigningKey, loadPrivateKey } from '../../device/keys.ts';
import { statePaths } from '../../device/state-paths.ts';
import { tempDir } from '../helpers/temp.ts';

test('a new key is created with mode 0600 and loads again unchanged', (t) => {
  const paths = statePaths(tempDir(t));
  const first = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  t.true(first.created);
  t.is(statSync(paths.privateKey).mode & 0o777, 0o600);
  const again = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  t.false(again.created);
  t.is(again.fingerprint, first.fingerprint);
  const sig = sign(null, Buffer.from('x'), again.privateKey);
  t.true(verify(null, Buffer.from('x'), first.publicKey, sig));
});

for (const mode of [0o640, 0o604, 0o644, 0o660]) {
  test(`a private key with mode ${mode.toString(8)} is refused`, (t) => {
    const paths = statePaths(tempDir(t));
    loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
    chmodSync(paths.privateKey, mode);
    const error = t.throws(() => loadOrCreateSigningKey(paths.privateKey, paths.publicKey));
    t.true(isRecorderError(error, 'KEY_PERMISSIONS'));
    t.regex(error!.message, /chmod 600/);
  });
}

test('a lost private key is not silently replaced', (t) => {
  const paths = statePaths(tempDir(t));
  loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  unlinkSync(paths.privateKey);
  const error = t.throws(() => loadOrCreateSigningKey(paths.privateKey, paths.publicKey));
  t.true(isRecorderError(error, 'KEY_MISSING'));
});

test('a private key file that is not a key gives KEY_INVALID', (t) => {
  const paths = statePaths(tempDir(t));
  loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  chmodSync(paths.privateKey, 0o600);
  writeFileSync(paths.privateKey, 'not a key');
  t.true(
    isRecorderError(
      t.throws(() => loadPrivateKey(paths.privateKey)),
      'KEY_INVALID',
    ),
  );
});
