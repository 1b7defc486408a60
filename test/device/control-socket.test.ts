import test from 'ava';
import { createConnection } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControlServer, controlRequest } from '../../device/control-socket.ts';
import { RecorderError, isRecorderError } from '../../protocol/errors.ts';
import { tempDir } from '../helpers/temp.ts';

test('requests reach the handler and every one gets a reply, errors included', async (t) => {
  const path = join(tempDir(t), 'control.sock');
  const seen: unknown[] = [];
  const server = await ControlServer.listen(path, async (cmd, args) => {
    seen.push([cmd, args]);
    if (cmd === 'fail') throw new RecorderError('CONTROL_BAD_REQUEST', 'no such thing');
    return { echoed: args };
  });
  t.teardown(() => server.close());
  t.deepEqual(await controlRequest(path, 'press', { button: 'record' }), { echoed: { button: 'record' } });
  const error = await t.throwsAsync(controlRequest(path, 'fail'));
  t.true(isRecorderError(error, 'CONTROL_BAD_REQUEST'));
  t.deepEqual(seen, [
    ['press', { button: 'record' }],
    ['fail', {}],
  ]);
});

test('malformed lines get an error reply and the server keeps serving', async (t) => {
  const path = join(tempDir(t), 'control.sock');
  const server = await ControlServer.listen(path, async () => 'fine');
  t.teardown(() => server.close());
  const replies = await new Promise<string>((resolve) => {
    const socket = createConnection(path);
    let data = '';
    socket.on('data', (d) => {
      data += d;
      if (data.split('\n').length > 2) {
        socket.end();
        resolve(data);
      }
    });
    socket.write('not json\n{"id":7,"cmd":"status"}\n');
  });
  const [first, second] = replies
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.like(first, { ok: false, error: { code: 'CONTROL_BAD_REQUEST' } });
  t.deepEqual(second, { id: 7, ok: true, result: 'fine' });
});

test('no recorder running gives CONTROL_UNAVAILABLE; a stale socket file is replaced', async (t) => {
  const path = join(tempDir(t), 'control.sock');
  t.true(isRecorderError(await t.throwsAsync(controlRequest(path, 'status')), 'CONTROL_UNAVAILABLE'));
  writeFileSync(path, ''); // left behind by a recorder that crashed
  const first = await ControlServer.listen(path, async () => 1);
  // A second recorder on the same state directory is refused while the first answers.
  await t.throwsAsync(ControlServer.listen(path, async () => 2));
  await first.close();
  const second = await ControlServer.listen(path, async () => 2);
  t.teardown(() => second.close());
  t.is(await controlRequest(path, 'status'), 2);
});
