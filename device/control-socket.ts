/**
 * A Unix socket in the state directory through which another shell drives a running recorder:
 * simulated button presses, status, dock/undock. One JSON object per line each way; every request
 * gets a reply, errors included (Zigbee2MQTT's bridge request/response).
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { RecorderError, isRecorderError } from '../protocol/errors.ts';

export interface ControlRequest {
  id: number;
  cmd: string;
  args?: Record<string, unknown>;
}

export type ControlReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

export type ControlHandler = (cmd: string, args: Record<string, unknown>) => Promise<unknown>;

const MAX_LINE = 64 * 1024;

export class ControlServer {
  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  static async listen(path: string, handler: ControlHandler): Promise<ControlServer> {
    if (existsSync(path)) {
      // A socket left by a crashed recorder: refuse if one still answers, else replace it.
      if (await answers(path)) {
        throw new RecorderError(
          'CONTROL_BAD_REQUEST',
          `a recorder is already running with control socket ${path}`,
        );
      }
      unlinkSync(path);
    }
    const server = createServer((socket) => serve(socket, handler));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return new ControlServer(server, path);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      // already removed
    }
  }
}

function serve(socket: Socket, handler: ControlHandler): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > MAX_LINE && !buffer.includes('\n')) {
      reply(socket, {
        id: 0,
        ok: false,
        error: { code: 'CONTROL_BAD_REQUEST', message: 'request line too long' },
      });
      socket.end();
      return;
    }
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      void handleLine(socket, line, handler);
    }
  });
}

async function handleLine(socket: Socket, line: string, handler: ControlHandler): Promise<void> {
  let request: ControlRequest;
  try {
    request = JSON.parse(line) as ControlRequest;
    if (typeof request.cmd !== 'string' || typeof request.id !== 'number')
      throw new Error('needs id and cmd');
  } catch (error) {
    reply(socket, {
      id: 0,
      ok: false,
      error: { code: 'CONTROL_BAD_REQUEST', message: (error as Error).message },
    });
    return;
  }
  try {
    const result = await handler(request.cmd, request.args ?? {});
    reply(socket, { id: request.id, ok: true, result: result ?? null });
  } catch (error) {
    const code = isRecorderError(error) ? error.code : 'INTERNAL';
    reply(socket, { id: request.id, ok: false, error: { code, message: (error as Error).message } });
  }
}

function reply(socket: Socket, message: ControlReply): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Sends one request to the recorder running on `path` and returns its result. */
export function controlRequest(
  path: string,
  cmd: string,
  args: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new RecorderError(
          'CONTROL_UNAVAILABLE',
          `the recorder on ${path} did not answer within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new RecorderError(
          'CONTROL_UNAVAILABLE',
          `no recorder answers on ${path} (${error.code}); start one with: recorder device run --profile FILE --state DIR`,
        ),
      );
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const i = buffer.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      socket.end();
      const message = JSON.parse(buffer.slice(0, i)) as ControlReply;
      if (message.ok) resolve(message.result);
      else
        reject(
          new RecorderError(message.error.code as never, message.error.message.replace(/ \([A-Z_]+\)$/, '')),
        );
    });
    socket.write(`${JSON.stringify({ id: 1, cmd, args })}\n`);
  });
}
