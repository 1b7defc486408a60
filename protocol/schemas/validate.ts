/**
 * Schema validation shared by every boundary (profiles, MQTT payloads, frames). TypeBox gives the
 * TypeScript type and a publishable JSON Schema from one definition; validation reports every
 * problem at once as `path: message` lines (as Zigbee2MQTT's settings do).
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { RecorderError, type ErrorCode } from '../errors.ts';

export interface SchemaProblem {
  /** JSON Pointer-like path, `/capture/fps`; `/` for the whole document */
  path: string;
  message: string;
}

export function schemaProblems(schema: TSchema, value: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const path = error.path || '/';
    // One problem per path: "required" and "expected string" for one missing field say the same.
    if (seen.has(path)) continue;
    seen.add(path);
    problems.push({ path, message: error.message });
  }
  return problems;
}

/**
 * Fills documented defaults into a copy of `value`, validates it, and returns it typed; throws one
 * RecorderError with `code` listing every problem otherwise.
 */
export function parseWithSchema<T extends TSchema>(
  schema: T,
  value: unknown,
  code: ErrorCode,
  what: string,
): Static<T> {
  const withDefaults = Value.Default(schema, structuredClone(value));
  const problems = schemaProblems(schema, withDefaults);
  if (problems.length > 0) throw invalid(code, what, problems);
  return withDefaults as Static<T>;
}

export function invalid(code: ErrorCode, what: string, problems: SchemaProblem[]): RecorderError {
  const lines = problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
  return new RecorderError(code, `${what} is invalid:\n${lines}\n`, { problems });
}
