/**
 * Writes a Hugging Face Llama folder as a standard decoder ONNX model (see exportDecoderOnnx).
 *
 *   node bench/run.mjs bench/export.ts <model folder> <out dir>
 */
import { exportDecoderOnnx } from '../src/index.js';

const [folder, outDir] = process.argv.slice(2);
if (!folder || !outDir) {
  console.error('usage: node bench/run.mjs bench/export.ts <model folder> <out dir>');
  process.exit(2);
}
const started = performance.now();
const result = await exportDecoderOnnx({ folder, outDir });
console.log(`wrote ${result.files.join(', ')} (${result.nodes} nodes) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
