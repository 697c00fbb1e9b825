// Interop check (not a test: @huggingface/transformers is heavy and not a dependency of this
// package). Loads a folder written by exportDecoderOnnx with transformers.js, offline, and
// compares its greedy tokens with the golden fixture.
//
//   mkdir /tmp/tjs && cd /tmp/tjs && npm init -y && ONNXRUNTIME_NODE_INSTALL=skip npm i @huggingface/transformers@4.3.2
//   (export: exportDecoderOnnx({ folder: <shared>/models/py-llama-28m, outDir: /tmp/tjs/models/py-llama-28m }))
//   NODE_PATH=/tmp/tjs/node_modules node bench/transformers-js-check.mjs /tmp/tjs/models py-llama-28m <shared>/fixtures/py-llama-28m.golden.json
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [modelsDir, name, fixturePath] = process.argv.slice(2);
if (!modelsDir || !name || !fixturePath) {
  console.error('usage: node bench/transformers-js-check.mjs <models dir> <model name> <golden fixture>');
  process.exit(2);
}
const require = createRequire(join(process.env.NODE_PATH ?? process.cwd(), 'x.js'));
const { AutoModelForCausalLM, AutoTokenizer, env } = await import(require.resolve('@huggingface/transformers'));
env.allowRemoteModels = false;
env.localModelPath = modelsDir;
const fixture = JSON.parse(readFileSync(fixturePath, 'utf8'));
const tokenizer = await AutoTokenizer.from_pretrained(name);
const model = await AutoModelForCausalLM.from_pretrained(name, { dtype: 'fp32', device: 'cpu' });
let equal = 0;
for (const [index, golden] of fixture.cases.entries()) {
  const inputs = tokenizer(golden.prompt, { add_special_tokens: false });
  const started = performance.now();
  const output = await model.generate({ ...inputs, max_new_tokens: golden.greedy64.length, do_sample: false });
  const seconds = (performance.now() - started) / 1000;
  const ids = Array.from(output.tolist()[0], Number);
  const generated = ids.slice(golden.ids.length);
  const same = JSON.stringify(generated) === JSON.stringify(golden.greedy64);
  const promptSame = JSON.stringify(ids.slice(0, golden.ids.length)) === JSON.stringify(golden.ids);
  if (same && promptSame) equal++;
  console.log(`case ${index}: prompt ids equal ${promptSame}, greedy tokens equal ${same} (${generated.length} tokens, ${(generated.length / seconds).toFixed(1)} tokens/s)`);
}
console.log(`${equal}/${fixture.cases.length} cases equal`);
process.exit(equal === fixture.cases.length ? 0 : 1);
