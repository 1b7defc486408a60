/**
 * decodePayload checks with schemas compiled once (protocol/topics.ts); these tests hold the
 * compiled checks to exactly what TypeBox's interpreter (`Value.Check`) accepts.
 */
import test from 'ava';
import fc from 'fast-check';
import { Value } from '@sinclair/typebox/value';
import { TOPICS, decodePayload, encodePayload, type TopicName } from '../../protocol/topics.ts';
import { makeStatus } from '../helpers/mqtt.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value inside `doc`, the root excluded. */
function paths(doc: Json, prefix: string[] = []): string[][] {
  if (doc === null || typeof doc !== 'object') return [];
  return Object.entries(doc).flatMap(([k, v]) => [[...prefix, k], ...paths(v, [...prefix, k])]);
}

function mutate(doc: Json, path: string[], value: Json | undefined): Json {
  const copy = structuredClone(doc) as { [k: string]: Json };
  let at = copy;
  for (const k of path.slice(0, -1)) at = at[k] as { [k: string]: Json };
  if (value === undefined) delete at[path.at(-1)!];
  else at[path.at(-1)!] = value;
  return copy;
}

const samples: [TopicName, Json][] = [
  [
    'status',
    makeStatus('D-1', { uploads: { pending: 2, oldestDeadline: '2026-11-24T08:00:00.000Z' } }) as Json,
  ],
  ['cmd', { id: 'r-1', name: 'locate', time: '2026-11-23T08:00:00.000Z', args: { seconds: 10 } }],
  [
    'cmdResult',
    {
      id: 'r-1',
      name: 'locate',
      ok: false,
      time: '2026-11-23T08:00:01.000Z',
      error: { code: 'X', message: 'y' },
    },
  ],
];

test('valid payloads pass, and each sample is valid to begin with', (t) => {
  for (const [name, doc] of samples) {
    t.true(Value.Check(TOPICS[name].schema, doc), name);
    t.true(decodePayload(name, Buffer.from(JSON.stringify(doc))).ok, name);
  }
});

test('property: a payload with any one field replaced, removed or added is accepted exactly when Value.Check accepts it', (t) => {
  for (const [name, doc] of samples) {
    const all = paths(doc);
    fc.assert(
      fc.property(
        fc.nat({ max: all.length - 1 }),
        fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.string(), fc.integer(), fc.double()),
        fc.boolean(),
        (i, value, extra) => {
          const path = extra ? [...all[i]!.slice(0, -1), 'unexpected'] : all[i]!;
          const mutated = mutate(doc, path, value as Json | undefined);
          const text = JSON.stringify(mutated);
          const expected = Value.Check(TOPICS[name].schema, JSON.parse(text));
          const decoded = decodePayload(name, Buffer.from(text));
          t.is(decoded.ok, expected, `${name} ${text}`);
          if (!decoded.ok) t.true(decoded.problems.length > 0);
        },
      ),
      { numRuns: 400 },
    );
  }
});

test('encodePayload refuses what the schema refuses', (t) => {
  const bad = { ...makeStatus('D-1'), battery: { percent: 101, charging: false, minutesLeft: 1 } };
  const encoded = encodePayload('status', bad);
  t.false(encoded.ok);
  if (!encoded.ok)
    t.deepEqual(
      encoded.problems.map((p) => p.path),
      ['/battery/percent'],
    );
  t.true(encodePayload('status', makeStatus('D-1')).ok);
});
