/** How commands report: results on stdout, errors on stderr with their code, exit codes fixed. */
import { isRecorderError } from '../protocol/errors.ts';

export const EXIT_OK = 0;
/** The command ran and found a problem (a broken chain, a failed check). */
export const EXIT_PROBLEMS = 1;
/** The command could not run: bad arguments, missing files, refused keys. */
export const EXIT_ERROR = 2;

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printError(error: unknown): number {
  if (isRecorderError(error)) {
    process.stderr.write(`recorder: ${error.message}\n`);
  } else {
    process.stderr.write(`recorder: ${(error as Error)?.stack ?? String(error)}\n`);
  }
  return EXIT_ERROR;
}
