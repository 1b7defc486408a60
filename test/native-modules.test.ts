// The native modules must really load: a skipped or failed native build would otherwise only show
// up on a device. This test fails loudly, naming the module and what to do.
import test from 'ava';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const natives: [string, (m: Record<string, unknown>) => boolean][] = [
  ['gstreamer-superficial', (m) => typeof m.Pipeline === 'function'],
  ['@serialport/bindings-cpp', (m) => typeof m.autoDetect === 'function'],
  ['epoll', (m) => 'Epoll' in m],
  ['better-sqlite3', (m) => typeof m === 'function'],
];

for (const [name, check] of natives) {
  test(`native module ${name} loads`, (t) => {
    let loaded: Record<string, unknown>;
    try {
      loaded = require(name);
    } catch (error) {
      t.fail(
        `${name} did not load: ${(error as Error).message}. Its install script must be approved in ` +
          `package.json allowScripts and the Debian build packages present; run: rm -rf node_modules && npm test`,
      );
      return;
    }
    t.true(check(loaded), `${name} loaded but lacks its expected export`);
  });
}
