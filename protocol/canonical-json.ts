/**
 * RFC 8785 JSON Canonicalization Scheme.
 *
 * Written here rather than taken from a package because the journal needs the strict variant:
 * values JSON cannot carry (undefined, functions, NaN, lone surrogates) are errors, not silently
 * dropped, and `toJSON` is never consulted. Number and string serialisation are exactly
 * ECMAScript's, which is what RFC 8785 §3.2.2.2–3 specifies.
 */
import { RecorderError } from './errors.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function canonicalize(value: unknown): string {
  return serialize(value, '$');
}

function serialize(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // RFC 8785 §3.2.2.3: NaN and Infinity must cause an error.
      if (!Number.isFinite(value)) throw unsupported(path, String(value));
      return JSON.stringify(value);
    case 'string':
      // RFC 8785 §3.2.2.2 (I-JSON, RFC 7493 §2.1): no lone surrogates.
      if (LONE_SURROGATE.test(value)) throw unsupported(path, 'a string with a lone surrogate');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((item, i) => serialize(item, `${path}[${i}]`)).join(',')}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw unsupported(path, `an object of class ${proto?.constructor?.name ?? 'unknown'}`);
      }
      // RFC 8785 §3.2.3: sort by UTF-16 code units, which is what the default sort compares.
      const keys = Object.keys(value).sort();
      const parts = keys.map((key) => {
        if (LONE_SURROGATE.test(key)) throw unsupported(`${path}.${key}`, 'a key with a lone surrogate');
        return `${JSON.stringify(key)}:${serialize((value as Record<string, unknown>)[key], `${path}.${key}`)}`;
      });
      return `{${parts.join(',')}}`;
    }
    default:
      throw unsupported(path, typeof value);
  }
}

function unsupported(path: string, what: string): RecorderError {
  return new RecorderError('CANONICAL_UNSUPPORTED', `${path} is ${what}, which canonical JSON cannot carry`, {
    path,
  });
}
