// Runs the Python unit tests of the training tooling with Debian's PyTorch (/usr/bin/python3),
// and prints one summary line "python: N passed, N failed, N skipped" that .ci/run adds up.
// Without torch the tests are skipped with the reason and the install command (CI installs it).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const python = process.env.TRAIN_HEADS_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
if (probe.status !== 0) {
  console.log(
    `Skipping the Python tests: ${python} cannot import torch and numpy. ` +
      'Install them with: apt-get install -y python3-torch python3-numpy libopenblas0-pthread',
  );
  console.log('python: 0 passed, 0 failed, 1 skipped');
  process.exit(0);
}
const run = spawnSync(python, ['-m', 'unittest', 'discover', '-v', '-s', 'tests'], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, TRAIN_HEADS_THREADS: process.env.TRAIN_HEADS_THREADS ?? '2' },
});
const output = `${run.stdout}${run.stderr}`;
process.stdout.write(output);
const ran = Number(/Ran (\d+) tests?/.exec(output)?.[1] ?? 0);
const failures = Number(/failures=(\d+)/.exec(output)?.[1] ?? 0) + Number(/errors=(\d+)/.exec(output)?.[1] ?? 0);
const skipped = Number(/skipped=(\d+)/.exec(output)?.[1] ?? 0);
console.log(`python: ${ran - failures - skipped} passed, ${failures} failed, ${skipped} skipped`);
process.exit(run.status === 0 ? 0 : 1);
