import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeSafetensors } from '@gumiho/safetensors';
import { randomLlamaTensors, writeRandomLlama } from '@gumiho/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './main.js';

const SHARED = process.env.GUMIHO_SHARED_DIR ?? fileURLToPath(new URL('../../../../shared', import.meta.url));
const REAL_MODEL = join(SHARED, 'models', 'py-llama-28m');
const FIXTURE = join(SHARED, 'fixtures', 'py-llama-28m.golden.json');
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
/** A tiny random Llama with the real tokenizer (vocabulary 8192) and a 32-token context. */
let tiny: string;

async function run(args: string[], env: Record<string, string | undefined> = {}, tty = false): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (chunk: string) => (stdout += chunk), isTTY: tty },
    stderr: { write: (chunk: string) => (stderr += chunk), isTTY: false },
    env: { GUMIHO_MODEL_STORE: join(dir, 'store'), GUMIHO_MODEL_SOURCE: join(dir, 'no-source'), ...env },
    cwd: dir,
  });
  return { code, stdout, stderr };
}

/** Asserts a bad-input failure: exit 2, one paragraph on stderr with the problem and a fix, no stack. */
function expectBadInput(result: Run, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stdout).toBe('');
  // Progress lines of the model store may come first; the error is the one last paragraph.
  const lines = result.stderr.trimEnd().split('\n');
  const paragraph = lines.at(-1)!;
  expect(paragraph).toMatch(/^gumiho: /);
  expect(paragraph).toMatch(pattern);
  expect(paragraph).toContain('Fix:');
  expect(lines.filter((line) => line.startsWith('gumiho: '))).toHaveLength(1);
  expect(lines.every((line) => line.startsWith('gumiho: ') || line.startsWith('Fetching '))).toBe(true);
}

async function tinyModel(folder: string, options: Parameters<typeof writeRandomLlama>[1] = {}): Promise<string> {
  await writeRandomLlama(folder, { vocabSize: 8192, maxPositions: 32, ...options });
  await copyFile(join(REAL_MODEL, 'tokenizer.json'), join(folder, 'tokenizer.json'));
  await copyFile(join(REAL_MODEL, 'tokenizer_config.json'), join(folder, 'tokenizer_config.json'));
  return folder;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gumiho-cli-'));
  tiny = await tinyModel(join(dir, 'tiny'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('gumiho help and flags', () => {
  it('prints help', async () => {
    const main = await run(['--help']);
    expect(main.code).toBe(0);
    expect(main.stdout).toMatch(/gumiho generate/);
    const generate = await run(['generate', '--help']);
    expect(generate.code).toBe(0);
    expect(generate.stdout).toMatch(/--prompt-file <path>/);
    expect(generate.stdout).toMatch(/--backend <name> +cpu/);
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Usage/);
  });

  it('rejects unknown flags and commands', async () => {
    expectBadInput(await run(['generate', '--prompt', 'x', '--frobnicate']), /Unknown option '--frobnicate'.*generate --help/);
    expectBadInput(await run(['generate', '--prompt']), /--prompt/);
    expectBadInput(await run(['translate']), /Unknown command "translate"/);
  });

  it('rejects nonsense sampling values before loading anything', async () => {
    const model = ['--model', join(dir, 'does-not-matter')];
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--temperature', '-1']), /temperature must be .*>= 0, got -1/);
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--temperature', 'hot']), /--temperature must be a number, got "hot"/);
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--top-p', '1.5']), /top-?p/i);
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--top-p', '0']), /top-?p/i);
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--top-k', '0']), /top-?k/i);
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--top-k', '2.5']), /--top-k must be an integer/);
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--max-new-tokens', '0']), /--max-new-tokens must be at least 1/);
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--backend', 'tpu']), /Unknown backend "tpu"; available backends: cpu/);
    expectBadInput(await run(['generate', ...model, '--prompt', 'x', '--policy', 'magic']), /Unknown policy "magic"; available policies: vanilla/);
  });

  it('rejects missing, doubled, empty and unreadable prompts', async () => {
    expectBadInput(await run(['generate', '--model', tiny]), /No prompt was given/);
    expectBadInput(await run(['generate', '--model', tiny, '--prompt', 'a', '--prompt-file', 'b']), /Both --prompt and --prompt-file/);
    expectBadInput(await run(['generate', '--model', tiny, '--prompt', '']), /The prompt is empty/);
    await writeFile(join(dir, 'empty.txt'), '');
    expectBadInput(await run(['generate', '--model', tiny, '--prompt-file', 'empty.txt']), /The prompt is empty/);
    expectBadInput(await run(['generate', '--model', tiny, '--prompt-file', 'missing.txt']), /Cannot read the prompt file .*missing\.txt/);
  });

  it('rejects a prompt longer than the context', async () => {
    const long = 'def f(x):\n    return x\n'.repeat(20);
    expectBadInput(await run(['generate', '--model', tiny, '--prompt', long]), /The prompt has \d+ tokens, but the context holds 32/);
    expectBadInput(await run(['generate', '--model', tiny, '--max-context', '4096', '--prompt', 'x']), /maxContext must be an integer in 2\.\.32/);
  });
});

describe('gumiho generate: bad model folders', () => {
  it('names a missing model folder', async () => {
    expectBadInput(await run(['generate', '--model', './nope', '--prompt', 'x']), /model folder .*nope does not exist/);
  });

  it('names a shard listed in the index but absent', async () => {
    const folder = await tinyModel(join(dir, 'sharded'), { shards: 2 });
    await unlink(join(folder, 'model-00002-of-00002.safetensors'));
    expectBadInput(await run(['generate', '--model', folder, '--prompt', 'x']), /shard model-00002-of-00002\.safetensors named in model\.safetensors\.index\.json is missing/);
  });

  it('names a tensor with the wrong shape', async () => {
    const folder = await tinyModel(join(dir, 'shape'));
    const config = JSON.parse(await readFile(join(folder, 'config.json'), 'utf8'));
    await writeFile(join(folder, 'config.json'), JSON.stringify({ ...config, hidden_size: 20 }));
    expectBadInput(await run(['generate', '--model', folder, '--prompt', 'x']), /"model\.embed_tokens\.weight".*expected shape \[8192, 20\], received \[8192, 16\]/);
  });

  it('names a tensor with the wrong dtype', async () => {
    const folder = await tinyModel(join(dir, 'dtype'));
    const tensors = randomLlamaTensors({ vocabSize: 8192 });
    const bytes = encodeSafetensors(tensors);
    // Rewrite one header entry's dtype from F32 to I32 (same width, so offsets stay valid).
    const text = new TextDecoder().decode(bytes);
    const marker = '"model.norm.weight":{"dtype":"F32"';
    const at = text.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    bytes.set(new TextEncoder().encode('"model.norm.weight":{"dtype":"I32"'), at);
    await writeFile(join(folder, 'model.safetensors'), bytes);
    expectBadInput(await run(['generate', '--model', folder, '--prompt', 'x']), /"model\.norm\.weight".*expected dtype BF16 or F16 or F32, received I32/);
  });

  it('rejects an unsupported model_type', async () => {
    const folder = await tinyModel(join(dir, 'arch'), { config: { model_type: 'gpt_neox' } });
    expectBadInput(await run(['generate', '--model', folder, '--prompt', 'x']), /model_type "gpt_neox" is not supported; supported model types: llama/);
  });
});

describe('gumiho generate: model store', () => {
  it('fails on a checksum mismatch, names the file and leaves nothing in the store', async () => {
    const source = join(dir, 'bad-source', 'py-llama-28m');
    await mkdir(source, { recursive: true });
    for (const file of await readdir(REAL_MODEL)) await symlink(join(REAL_MODEL, file), join(source, file));
    await unlink(join(source, 'config.json'));
    await writeFile(join(source, 'config.json'), '{"model_type": "llama"}');
    const store = join(dir, 'store-checksum');
    const result = await run(['generate', '--prompt', 'x'], { GUMIHO_MODEL_SOURCE: join(dir, 'bad-source'), GUMIHO_MODEL_STORE: store });
    expectBadInput(result, /Checksum mismatch for config\.json of py-llama-28m/);
    expect(await readdir(store)).toEqual([]);
  });

  it('names the source folder when the model cannot be found', async () => {
    const store = join(dir, 'store-missing');
    expectBadInput(await run(['generate', '--prompt', 'x'], { GUMIHO_MODEL_STORE: store }), /source lacks .*GUMIHO_MODEL_SOURCE/s);
    expect(existsSync(join(store, 'py-llama-28m'))).toBe(false);
  });
});

describe('gumiho generate: output', () => {
  it('streams the same text that --json reports, and stats that add up', async () => {
    const args = ['generate', '--model', tiny, '--prompt', 'def main():', '--max-new-tokens', '6'];
    const json = await run([...args, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { text: string; tokenIds: number[]; stats: Record<string, number | string> };
    expect(parsed.tokenIds.length).toBeGreaterThan(0);
    expect(parsed.tokenIds.length).toBeLessThanOrEqual(6);
    expect(parsed.stats.newTokens).toBe(parsed.tokenIds.length);
    expect(parsed.stats.rounds).toBe(parsed.tokenIds.length);
    expect(parsed.stats.meanAcceptedLength).toBe(1);
    for (const key of ['tokensPerSecond', 'wallMs', 'prefillMs', 'draftMs', 'verifyMs']) expect(typeof parsed.stats[key]).toBe('number');
    const streamed = await run(args);
    expect(streamed.code).toBe(0);
    expect(streamed.stdout).toBe(parsed.text);
    const verbose = await run([...args, '--verbose']);
    expect(verbose.stderr).toMatch(/tokens\/s/);
  });

  it('samples reproducibly with a seed', async () => {
    const args = ['generate', '--model', tiny, '--prompt', 'import', '--max-new-tokens', '8', '--temperature', '1.5', '--top-k', '50', '--json'];
    const first = JSON.parse((await run([...args, '--seed', '7'])).stdout) as { tokenIds: number[] };
    const again = JSON.parse((await run([...args, '--seed', '7'])).stdout) as { tokenIds: number[] };
    expect(again.tokenIds).toEqual(first.tokenIds);
  });

  it.skipIf(!existsSync(FIXTURE))('reproduces the reference greedy tokens of the real model', async () => {
    const golden = (JSON.parse(await readFile(FIXTURE, 'utf8')) as { cases: { prompt: string; greedy64: number[] }[] }).cases[1]!;
    await writeFile(join(dir, 'prompt.py'), golden.prompt);
    const result = await run(['generate', '--model', REAL_MODEL, '--prompt-file', 'prompt.py', '--max-new-tokens', '12', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { tokenIds: number[] }).tokenIds).toEqual(golden.greedy64.slice(0, 12));
  });
});

describe.skipIf(!existsSync(CLI))('the built executable', () => {
  it('exits 2 with one paragraph on stderr for bad input', () => {
    const result = spawnSync(process.execPath, [CLI, 'generate', '--prompt', 'x', '--temperature', '-2'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^gumiho: temperature must be/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
