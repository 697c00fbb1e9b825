// Cuts benchmark prompts from the held-out files (../shared/data/python-code/dev.jsonl):
// one prompt per file for the N largest files of distinct packages, starting at a line boundary
// about a third into the file and ending right after an identifier, ~600 characters long
// (see the model card: prompts ending in whitespace are off-distribution).
// Usage: node packages/bench/scripts/make-prompts.mjs [dev.jsonl] [count] > packages/bench/prompts/dev-python.json
import { readFileSync } from 'node:fs';

const path = process.argv[2] ?? new URL('../../../../shared/data/python-code/dev.jsonl', import.meta.url).pathname;
const count = Number(process.argv[3] ?? 12);
const rows = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
const byPackage = new Map();
for (const row of rows) {
  const pkg = row.path.split('/')[1];
  if (row.text.length < 3000) continue;
  if (!byPackage.has(pkg)) byPackage.set(pkg, []);
  byPackage.get(pkg).push(row);
}
const picked = [];
for (let round = 0; picked.length < count && round < 10; round++) {
  for (const files of byPackage.values()) {
    const file = files.sort((a, b) => b.text.length - a.text.length)[round];
    if (file && picked.length < count) picked.push(file);
  }
}
const identifier = /[A-Za-z0-9_]/;
const prompts = picked.map((file) => {
  const text = file.text;
  let start = text.indexOf('\n', Math.floor(text.length / 3)) + 1;
  let end = start + 600;
  while (end < text.length && !(identifier.test(text[end - 1]) && !identifier.test(text[end]))) end++;
  return { path: file.path, prompt: text.slice(start, end) };
});
process.stdout.write(JSON.stringify(prompts, null, 1) + '\n');
