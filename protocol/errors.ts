/**
 * One error class for the whole product. Callers branch on `code`, never on the message;
 * the code is appended to the message so a user can search for it (as zwave-js does).
 */
export const ErrorCodes = {
  // Canonical JSON (RFC 8785)
  CANONICAL_UNSUPPORTED: 'value cannot be expressed in RFC 8785 canonical JSON',
  // Journal
  JOURNAL_BAD_JSON: 'a journal line is not JSON',
  JOURNAL_BAD_ENTRY: 'a journal line is JSON but not a journal entry',
  JOURNAL_NOT_CANONICAL: 'a journal line is not in RFC 8785 canonical form',
  JOURNAL_BAD_SIGNATURE: 'a journal entry signature does not verify',
  JOURNAL_BAD_PREV: 'a journal entry does not chain to the line before it',
  JOURNAL_SEQ_GAP: 'journal sequence numbers skip',
  JOURNAL_SEQ_REPEAT: 'a journal sequence number repeats or goes back',
  JOURNAL_TIME_BACKWARDS: 'journal wall-clock time goes backwards beyond the tolerance',
  JOURNAL_DEVICE_MISMATCH: 'a journal entry names another device',
  JOURNAL_TORN_TAIL: 'the journal ends with an incomplete line',
  JOURNAL_TRUNCATED: 'the journal ends before its known head',
  JOURNAL_HEAD_MISMATCH: 'the journal entry at the known head differs',
  JOURNAL_LOCKED: 'the journal is already open for writing',
  JOURNAL_CORRUPT: 'the journal cannot be continued',
  JOURNAL_WRITE_FAILED: 'a journal entry could not be written',
  // Keys
  KEY_MISSING: 'a key file is missing',
  KEY_PERMISSIONS: 'a private key file is readable by others',
  KEY_INVALID: 'a key file cannot be read as a key',
  // Profiles
  PROFILE_INVALID: 'a device profile does not pass validation',
  // Command line
  CLI_USAGE: 'the command was called with wrong arguments',
  FILE_NOT_FOUND: 'a file does not exist',
  // Hardware (GNSS, GPIO, battery, storage)
  GNSS_PORT_UNAVAILABLE: 'the GNSS serial port cannot be opened',
  GPIO_UNAVAILABLE: 'the GPIO driver named in the profile cannot run on this machine',
  BATTERY_UNAVAILABLE: 'the battery power_supply directory cannot be read',
  STORAGE_UNAVAILABLE: 'the evidence volume cannot be measured',
  HARDWARE_DRIVER_UNKNOWN: 'the profile names a hardware driver that does not exist',
  HARDWARE_CONFIG_INVALID: 'a hardware setting is out of range',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class RecorderError extends Error {
  override readonly name = 'RecorderError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly context?: Record<string, unknown>,
  ) {
    super(`${message} (${code})`);
  }

  /** The message without the trailing code, for reports that print the code separately. */
  get detail(): string {
    return this.message.slice(0, -(this.code.length + 3));
  }
}

export function isRecorderError(error: unknown, code?: ErrorCode): error is RecorderError {
  return error instanceof RecorderError && (code === undefined || error.code === code);
}
