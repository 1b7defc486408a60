import test from 'ava';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { FrameGuard } from '../../gateway/frame-guard.ts';

/** A real loopback TCP pair; `server` is the side a FrameGuard wraps. */
async function socketPair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const listener = createServer().listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as { port: number };
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  const [server] = await accepted;
  return {
    server,
    client,
    close: () => {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

test('a packet written in corked pieces leaves as one socket write (one TLS record behind node:tls)', async (t) => {
  const { server, client, close } = await socketPair();
  t.teardown(close);
  const writes: Buffer[] = [];
  const write = server.write.bind(server) as (chunk: Buffer, cb?: (e?: Error | null) => void) => boolean;
  // Observes the real socket's writes; the bytes still go out through it.
  server.write = ((chunk: Buffer, cb?: (e?: Error | null) => void) => {
    writes.push(Buffer.from(chunk));
    return write(chunk, cb);
  }) as typeof server.write;
  const guard = new FrameGuard(server, 1024, () => t.fail('no oversize here'));
  // What mqtt-packet does for a PUBLISH: cork, write header, length, topic, id, payload, uncork.
  const pieces = [
    [0x32],
    [0x0d],
    [0x00, 0x03],
    [...Buffer.from('a/b')],
    [0x00, 0x01],
    [...Buffer.from('hello')],
  ];
  const expected = Buffer.from(pieces.flat());
  const received: Buffer[] = [];
  client.on('data', (d: Buffer) => received.push(d));
  guard.cork();
  for (const p of pieces) guard.write(Buffer.from(p));
  process.nextTick(() => guard.uncork());
  await new Promise<void>((resolve) => guard.write(Buffer.alloc(0), () => resolve()));
  while (Buffer.concat(received).length < expected.length) await once(client, 'data');
  t.is(writes.filter((w) => w.length > 0).length, 1);
  t.deepEqual(Buffer.concat(received), expected);
});

test('frames in both directions pass unchanged, and an oversized header still closes the connection', async (t) => {
  const { server, client, close } = await socketPair();
  t.teardown(close);
  const announced: number[] = [];
  const guard = new FrameGuard(server, 1024, (n) => announced.push(n));
  const inbound: Buffer[] = [];
  guard.on('data', (d: Buffer) => inbound.push(d));
  const small = Buffer.from([0x30, 0x05, 0x00, 0x01, 0x78, 0x68, 0x69]); // PUBLISH "x" "hi"
  client.write(small);
  while (Buffer.concat(inbound).length < small.length) await once(guard, 'data');
  t.deepEqual(Buffer.concat(inbound), small);
  const closed = once(client, 'close');
  client.write(Buffer.from([0x30, 0xff, 0xff, 0x7f])); // announces 2 MiB
  await closed;
  t.deepEqual(announced, [2_097_151]);
});
