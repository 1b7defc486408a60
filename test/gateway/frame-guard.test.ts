import test from 'ava';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import fc from 'fast-check';
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

/** MQTT packets of several header sizes: PUBLISH with 1- and 2-byte lengths, PINGREQ (no body). */
function packets(): Buffer[] {
  const publish = (payload: number) => {
    const body = Buffer.concat([Buffer.from([0x00, 0x01, 0x78]), Buffer.alloc(payload, payload & 0xff)]);
    const length = body.length < 128 ? [body.length] : [(body.length & 0x7f) | 0x80, body.length >> 7];
    return Buffer.concat([Buffer.from([0x30, ...length]), body]);
  };
  return [
    publish(5),
    Buffer.from([0xc0, 0x00]),
    publish(300),
    publish(0),
    publish(900),
    Buffer.from([0xc0, 0x00]),
  ];
}

/** Where each packet of `stream` ends (MQTT 3.1.1 §2.2). */
function packetEnds(stream: Buffer): Set<number> {
  const ends = new Set<number>();
  let i = 0;
  while (i < stream.length) {
    let length = 0;
    let k = 1;
    let multiplier = 1;
    for (; stream[i + k]! & 0x80; k++, multiplier *= 128) length += (stream[i + k]! & 0x7f) * multiplier;
    length += (stream[i + k]! & 0x7f) * multiplier;
    i += 1 + k + length;
    ends.add(i);
  }
  return ends;
}

test('however the socket splits the bytes, aedes gets them in order and in whole packets; a read of whole packets passes without a copy', async (t) => {
  const { server, close } = await socketPair();
  t.teardown(close);
  const stream = Buffer.concat(packets());
  const ends = packetEnds(stream);
  t.is(ends.size, packets().length);
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }),
      async (cuts) => {
        const guard = new FrameGuard(server, 1024, () => t.fail('no oversize here'));
        const out: Buffer[] = [];
        guard.on('data', (d: Buffer) => out.push(d));
        const at = [0, ...cuts.sort((a, b) => a - b), stream.length];
        // The socket's 'data' events, as the TLS layer would deliver them.
        for (let p = 1; p < at.length; p++)
          server.emit('data', Buffer.from(stream.subarray(at[p - 1], at[p])));
        server.removeAllListeners('data');
        await new Promise((r) => setImmediate(r)); // flowing mode starts on the next tick
        let position = 0;
        for (const piece of out) {
          position += piece.length;
          if (!ends.has(position)) return false;
        }
        return Buffer.concat(out).equals(stream);
      },
    ),
    { seed: 6, numRuns: 200 },
  );
  // A read that holds whole packets only is handed on as it is: the same memory, no copy.
  const guard = new FrameGuard(server, 1024, () => t.fail('no oversize here'));
  const out: Buffer[] = [];
  guard.on('data', (d: Buffer) => out.push(d));
  const read = Buffer.from(stream);
  server.emit('data', read);
  await new Promise((r) => setImmediate(r));
  t.is(out.length, 1);
  t.is(out[0]!.buffer, read.buffer);
  t.is(out[0]!.byteOffset, read.byteOffset);
});
