/**
 * The core {@link Tokenizer} over Hugging Face `tokenizer.json` files, backed by
 * `@huggingface/tokenizers` (pure JavaScript, offline). Not a tokenizer implementation of its own.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ModelLoadError, type Tokenizer } from '@gumiho/core';

/** A core {@link Tokenizer} that wraps a `@huggingface/tokenizers` tokenizer. */
export class HuggingFaceTokenizer implements Tokenizer {
  /** The wrapped tokenizer, for callers that need more than encode/decode. */
  readonly inner: HfTokenizer;

  /**
   * @param tokenizerJson the parsed `tokenizer.json`.
   * @param tokenizerConfig the parsed `tokenizer_config.json` (may be empty).
   */
  constructor(tokenizerJson: object, tokenizerConfig: object = {}) {
    this.inner = new HfTokenizer(tokenizerJson, tokenizerConfig);
  }

  /** Token ids of `text`, without special tokens (no BOS is added). */
  encode(text: string): Int32Array {
    return Int32Array.from(this.inner.encode(text, { add_special_tokens: false }).ids);
  }

  /** Text of `ids`; special tokens are skipped unless `skipSpecialTokens` is false. */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    return this.inner.decode(Array.from(ids), { skip_special_tokens: options.skipSpecialTokens ?? true });
  }
}

async function readJsonFile(path: string, required: boolean): Promise<object | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelLoadError(`Cannot read ${path}: ${(error as Error).message}.`, {
      path,
      cause: error,
      fix: 'check that the model folder has a readable tokenizer.json (Hugging Face tokenizers format).',
    });
  }
  try {
    return JSON.parse(text) as object;
  } catch (error) {
    throw new ModelLoadError(`${path} is not valid JSON: ${(error as Error).message}.`, {
      path,
      cause: error,
      fix: 're-download the file; it may be truncated.',
    });
  }
}

/**
 * Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional) from `folder`.
 *
 * @throws ModelLoadError when `tokenizer.json` is missing, unreadable or not a tokenizer.
 */
export async function loadTokenizer(folder: string): Promise<HuggingFaceTokenizer> {
  const path = join(folder, 'tokenizer.json');
  const tokenizerJson = (await readJsonFile(path, true))!;
  const tokenizerConfig = (await readJsonFile(join(folder, 'tokenizer_config.json'), false)) ?? {};
  try {
    return new HuggingFaceTokenizer(tokenizerJson, tokenizerConfig);
  } catch (error) {
    throw new ModelLoadError(`${path} is not a tokenizer @huggingface/tokenizers can load: ${(error as Error).message}.`, {
      path,
      cause: error,
      fix: 'use a tokenizer.json written by Hugging Face tokenizers.',
    });
  }
}
