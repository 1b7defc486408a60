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
  // Device control socket
  CONTROL_UNAVAILABLE: 'no recorder is running on this state directory',
  CONTROL_BAD_REQUEST: 'a control request is malformed or unknown',
  // Uploads
  UPLOAD_BAD_MESSAGE: 'an upload message does not match its schema',
  RECEIPT_INVALID: 'an upload receipt is not signed by the trusted gateway',
  RECEIPT_MISMATCH: 'an upload receipt names another item',
  RECEIPT_MISSING: 'the center answered a relayed journal without a receipt for it, or none is held',
  UPLOAD_FORGED: 'an upload offer is not signed by the device that sends it',
  DEVICE_EVIDENCE_DAMAGED:
    'a device journaled evidence it could not keep whole (an unfinished seal, a damaged local file)',
  DEVICE_ID_NOT_OF_UNIT:
    "at a center admitting several units, a device id does not begin with its unit's name and '-'",
  UPLOAD_TOO_LARGE: 'an upload is larger than the gateway accepts',
  UPLOAD_TIMEOUT: 'the gateway did not answer an upload message in time',
  UPLOAD_REFUSED: 'the gateway refused an upload',
  UPLOAD_FAILED: 'an upload failed',
  UPLOAD_HASH_MISMATCH:
    'the gateway found the bytes sent not to hash to the offer again after a full resend; the item is kept and tried next round',
  // Evidence store
  STORE_CONFLICT: 'an item is stored already with different content',
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
  // Sealing, evidence files, storage guard, device state (issue 3, branch sealing)
  PROFILE_ENCODER_UNKNOWN: 'the profile names a GStreamer encoder element that is not installed',
  STORAGE_FULL: 'the evidence volume has no room for this item; nothing was deleted',
  STORAGE_LOW: 'free space on the evidence volume is below the profile minimum',
  SEAL_FAILED: 'a spool file could not be sealed; the plaintext stays in the spool',
  SPOOL_NOT_FOUND: 'a spool file to seal does not exist',
  EVIDENCE_BAD_FORMAT: 'an evidence file does not have the sealed-evidence format',
  EVIDENCE_MISSING: 'a journaled evidence file is missing',
  EVIDENCE_MISMATCH: 'an evidence file differs from its journal entry (size or SHA-256)',
  EVIDENCE_UNJOURNALED: 'an evidence file has no journal entry',
  EVIDENCE_INCOMPLETE: 'an unfinished temporary evidence file was left by an interrupted seal',
  EVIDENCE_DECRYPT_FAILED: 'an evidence file does not decrypt (wrong key or tampered ciphertext)',
  EVIDENCE_PLAINTEXT_MISMATCH: 'decrypted evidence does not hash to the journaled plaintext SHA-256',
  MEDIA_DEMUX_FAILED: 'decrypted media does not demux cleanly',
  STATE_INVALID: 'the device state file cannot be read',
  SPOOL_NOT_RAM: 'the plaintext spool is not on a RAM file system',
  // Capture
  CAPTURE_ENCODER_UNSUPPORTED: 'the profile names an encoder element the capture pipeline cannot drive',
  CAPTURE_PIPELINE_FAILED: 'the capture pipeline reported an error or could not be built',
  CAPTURE_CHILD_EXITED: 'the capture child process exited unexpectedly',
  CAPTURE_HUNG: 'the capture pipeline made no progress within the watchdog timeout',
  CAPTURE_NOT_RUNNING: 'the capture pipeline is not running',
  CAPTURE_SNAPSHOT_FAILED: 'a snapshot could not be taken',
  CAPTURE_FAULT: 'the capture pipeline keeps failing after restarts',
  // Gateway, certificate authority and MQTT telemetry (issue 5)
  CA_EXISTS: 'a certificate authority already exists in this directory',
  CA_MISSING: 'the directory holds no certificate authority',
  CA_BAD_REQUEST: 'a certificate request cannot be issued',
  CA_UNKNOWN_SERIAL: 'no certificate with this serial number was issued',
  GATEWAY_CONFIG_INVALID: 'a gateway configuration does not pass validation',
  MQTT_PAYLOAD_INVALID: 'an MQTT payload does not match its schema',
  MQTT_TOPIC_REFUSED: 'the ACL refuses this topic for this identity',
  MQTT_NOT_CONNECTED: 'the MQTT client is not connected',
  // Provisioning (signed profiles, serial link, service port, flashing)
  PROFILE_UNSIGNED: 'a profile carries no signature',
  PROFILE_FOREIGN: 'a profile signature does not chain to the pinned unit CA',
  PROFILE_WRONG_DEVICE: 'a profile names another device',
  PROFILE_ROLLBACK: 'a profile version is not higher than the one in force',
  PROFILE_TOO_LARGE: 'a signed profile exceeds the size limit',
  LINK_TIMEOUT: 'the serial link got no acknowledgement after repeated retransmissions',
  LINK_CLOSED: 'the serial link is closed',
  SERVICE_REFUSED: 'the device refused a service-port command',
  SERVICE_PROTOCOL: 'a service-port message is malformed or unexpected',
  IDENTITY_INVALID: 'a device certificate or CA chain does not fit this device',
  CA_INVALID: 'a unit CA directory is missing a file or holds a bad one',
  // Evidence store checks, center ingest and the station → center relay (issue 6 items 4, 5)
  STORE_OBJECT_MISSING: 'a stored evidence object is missing (and was not purged after relay)',
  STORE_OBJECT_SIZE: 'a stored evidence object has another size than its index row',
  STORE_OBJECT_HASH: 'a stored evidence object does not hash to its index row',
  STORE_OBJECT_WRITABLE: 'a stored evidence object is not read-only',
  STORE_DEVICE_KEY_MISSING: 'the store holds no evidence key for a device, so its chain cannot be checked',
  STORE_DEVICE_KEY_CHANGED: 'a device presents another evidence key than the one first seen',
  STORE_ENTRY_INVALID: "an item's sealing entry is not signed by its device or does not name the item",
  STORE_ENTRY_NOT_IN_CHAIN:
    "an item's sealing entry is not the line the device's stored journal holds at that seq",
  STORE_INDEX_MISMATCH:
    "an item's index row (officer, event, kind, times, positions) differs from its device-signed sealing entry",
  STORE_RELAY_UNPROVEN: 'an item is marked relayed or purged, but no center receipt that names it is held',
  STORE_PURGE_REFUSED:
    'an item marked relayed has no center receipt that checks, so its object is not purged',
  STORE_ITEM_MISSING: "a device's journal records this gateway's receipt for an item the index does not hold",
  STORE_JOURNAL_HASH: 'a stored journal line does not hash to its recorded hash',
  STORE_RECEIPT_INVALID: 'a stored receipt does not verify or names another item',
  STORE_JOURNAL_RECEIPT_INVALID:
    'a relayed journal has no center receipt, or one that does not verify or names another line',
  STORE_INGEST_UNCHECKED: 'a center item has no successful plaintext check recorded',
  STORE_DEVICE_CERT_INVALID:
    "a device's kept certificate is missing, is not its unit CA's, or binds another key than the index holds",
  DEVICE_CERT_INVALID:
    'a relayed device certificate does not chain to a trusted unit CA or does not name the device',
  RELAY_NO_CERTIFICATE:
    'the station holds no certificate for a device, so the center could not check its key',
  RELAY_FAILED: 'relaying an item or journal to the center failed; it stays and is retried',
  // Uploads over MQTT (issue 6, branch upload-mqtt)
  UPLOAD_LINK_REFUSED: 'the gateway refused the upload reply topics to this client',
  UPLOAD_CHUNK_TOO_LARGE: 'the upload chunk size does not fit the gateway frame limit',
  UPLOAD_NOT_CONFIGURED: 'uploads are off: the profile names no gateway receipt key',
  // Profile push (issue 7)
  PROFILE_PUSH_REFUSED:
    'the gateway refused to retain a pushed profile (not signed for this unit and device, or older than the one it holds)',
  PROFILE_PUSH_NO_ANSWER:
    'the device did not answer a pushed profile in time (it stays retained and is applied when the device connects)',
  PROFILE_NONE: 'there is no current profile for this device to change',
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
