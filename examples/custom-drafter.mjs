// A custom drafter from parts, in a dozen lines: prompt n-gram lookup (a head with no weights)
// queried by the EAGLE-2 dynamic tree builder, so that several earlier continuations of the same
// n-gram are verified at once as a tree. Run from the repository root after `pnpm build`:
//   node examples/custom-drafter.mjs ['prompt text']
import { createCpuBackend } from '@gumiho/backend-cpu';
import { createSpeculativeDecoder } from '@gumiho/core';
import { createLookupHead } from '@gumiho/draft-heads';
import { createLlamaTarget, loadTokenizer, resolveModel } from '@gumiho/models';
import { createSampler } from '@gumiho/samplers';
import { createDynamicTreeBuilder } from '@gumiho/tree';
import { createVerifier } from '@gumiho/verify';

const folder = await resolveModel('py-llama-28m'); // copied into .models/ on first use
const target = await createLlamaTarget({ backend: createCpuBackend(), folder, maxContext: 1024 });
const policy = {
  id: 'lookup-tree',
  head: createLookupHead({ maxNgram: 3 }),
  builder: createDynamicTreeBuilder({ topK: 3, depth: 8, totalTokens: 16 }),
  maxTreeSize: 16,
};
const decoder = createSpeculativeDecoder({ target, tokenizer: await loadTokenizer(folder), policy, verifier: createVerifier(), sampler: createSampler({ temperature: 0 }) });
const stream = decoder.stream({ prompt: process.argv[2] ?? 'class Stack:\n    def push(self, item):\n        self.items.append(item)\n\n    def pop', maxNewTokens: 96 });
let step;
while (!(step = await stream.next()).done) {
  process.stdout.write(step.value.source === 'draft' ? `\x1b[32m${step.value.text}\x1b[39m` : step.value.text); // green: accepted drafts
}
const { stats } = step.value;
console.log(`\n${stats.newTokens} tokens in ${stats.rounds} target forwards (tau ${stats.meanAcceptedLength.toFixed(2)}), ${stats.tokensPerSecond.toFixed(1)} tokens/s`);
