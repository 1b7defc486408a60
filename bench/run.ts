/**
 * `npm run bench [-- --only NAME] [-- flags]`: runs each benchmark module in turn and prints its
 * results. A module exports `name` and `run(argv)`; flags after `--` reach every module.
 */
const modules = [await import('./fleet.ts')];
const argv = process.argv.slice(2);
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? argv[onlyAt + 1] : undefined;
for (const m of modules) {
  if (only && m.name !== only) continue;
  process.stdout.write(`\n== ${m.name} ==\n`);
  const results = await m.run(argv);
  process.stdout.write(`${JSON.stringify({ bench: m.name, results })}\n`);
}
