import test from 'ava';
import { canonicalize } from '../../protocol/canonical-json.ts';
import { isRecorderError } from '../../protocol/errors.ts';

// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical serialisation.
const appendixB: [string, string][] = [
  ['0000000000000000', '0'],
  ['8000000000000000', '0'],
  ['0000000000000001', '5e-324'],
  ['8000000000000001', '-5e-324'],
  ['7fefffffffffffff', '1.7976931348623157e+308'],
  ['ffefffffffffffff', '-1.7976931348623157e+308'],
  ['4340000000000000', '9007199254740992'],
  ['c340000000000000', '-9007199254740992'],
  ['4430000000000000', '295147905179352830000'],
  ['44b52d02c7e14af5', '9.999999999999997e+22'],
  ['44b52d02c7e14af6', '1e+23'],
  ['44b52d02c7e14af7', '1.0000000000000001e+23'],
  ['444b1ae4d6e2ef4e', '999999999999999700000'],
  ['444b1ae4d6e2ef4f', '999999999999999900000'],
  ['444b1ae4d6e2ef50', '1e+21'],
  ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
  ['3eb0c6f7a0b5ed8d', '0.000001'],
  ['41b3de4355555553', '333333333.3333332'],
  ['41b3de4355555554', '333333333.33333325'],
  ['41b3de4355555555', '333333333.3333333'],
  ['41b3de4355555556', '333333333.3333334'],
  ['41b3de4355555557', '333333333.33333343'],
  ['becbf647612f3696', '-0.0000033333333333333333'],
  ['43143ff3c1cb0959', '1424953923781206.2'],
];

function fromBits(hex: string): number {
  return Buffer.from(hex, 'hex').readDoubleBE(0);
}

for (const [bits, expected] of appendixB) {
  test(`RFC 8785 Appendix B: ${bits} → ${expected}`, (t) => {
    t.is(canonicalize(fromBits(bits)), expected);
  });
}

test('RFC 8785 Appendix B: NaN and Infinity are errors', (t) => {
  for (const bits of ['7fffffffffffffff', '7ff0000000000000', 'fff0000000000000']) {
    const error = t.throws(() => canonicalize({ x: fromBits(bits) }));
    t.true(isRecorderError(error, 'CANONICAL_UNSUPPORTED'));
    t.regex(error!.message, /\$\.x/);
  }
});

test('RFC 8785 §3.2.2: the example with numbers, strings and literals', (t) => {
  const input = JSON.parse(
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
      ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
      ' "literals": [null, true, false]}',
  );
  t.is(
    canonicalize(input),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
      '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

test('RFC 8785 §3.2.3: properties sorted by UTF-16 code units', (t) => {
  const input = JSON.parse(
    '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",' +
      ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",' +
      ' "\\u00f6": "Latin Small Letter O With Diaeresis"}',
  );
  t.is(
    canonicalize(input),
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
  );
});

test('nested objects and arrays are canonical at every depth', (t) => {
  t.is(canonicalize({ b: [{ z: 1, a: 'x' }, []], a: {} }), '{"a":{},"b":[{"a":"x","z":1},[]]}');
});

test('values JSON cannot carry are refused, not dropped', (t) => {
  for (const bad of [
    { a: undefined },
    { a: () => 1 },
    { a: 1n },
    { a: new Date(0) },
    { a: '\ud800' },
    { '\udc00': 1 },
  ]) {
    const error = t.throws(() => canonicalize(bad));
    t.true(isRecorderError(error, 'CANONICAL_UNSUPPORTED'), String(error));
  }
});
