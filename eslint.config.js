// Lint rules, including the import direction of DESIGN.md ("Layout and who may import whom"):
// cli → device, gateway; device → hardware, protocol; gateway → protocol; hardware → protocol;
// protocol → nothing with I/O (node:crypto is allowed).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const io = [
  'fs',
  'fs/*',
  'net',
  'tls',
  'dgram',
  'http',
  'https',
  'http2',
  'child_process',
  'worker_threads',
  'cluster',
  'os',
  'dns',
  'readline',
  'module',
  'process',
  'timers',
  'timers/*',
];
const ioModules = io.flatMap((m) => [m, `node:${m}`]);
const natives = [
  'gstreamer-superficial',
  'serialport',
  '@serialport/*',
  'onoff',
  'epoll',
  'mqtt',
  'aedes',
  'lowdb',
  'lowdb/*',
];

function layer(
  files,
  forbiddenFolders,
  extra = [],
  message = 'forbidden by the import direction in DESIGN.md',
) {
  return {
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...forbiddenFolders.map((folder) => ({
              group: [`**/${folder}/*`, `**/${folder}`],
              message: `${folder}/ is ${message}`,
            })),
            ...(extra.length ? [{ group: extra, message: `I/O and native modules are ${message}` }] : []),
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  layer(['protocol/**/*.ts'], ['hardware', 'device', 'gateway', 'cli'], [...ioModules, ...natives]),
  layer(['hardware/**/*.ts'], ['device', 'gateway', 'cli']),
  layer(['device/**/*.ts'], ['gateway', 'cli']),
  layer(['gateway/**/*.ts'], ['device', 'hardware', 'cli']),
  {
    // protocol/ may not reach the process either: no globals with I/O.
    files: ['protocol/**/*.ts'],
    rules: {
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'setImmediate', 'fetch'],
    },
  },
);
