#!/usr/bin/env node
/**
 * The `gumiho` executable: runs {@link runCli} on the process arguments and exits with its code.
 */
import { runCli } from './main.js';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
process.exitCode = code;
