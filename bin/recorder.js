#!/usr/bin/env node
// The `recorder` executable. The sources are TypeScript, run through tsx's loader so that a
// checkout works without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
