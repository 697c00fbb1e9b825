/**
 * The speculative decoding loop (architecture section 4): prefill, then rounds of
 * draft -> verify -> commit until EOS, `maxNewTokens` or the context limit.
 *
 * The loop knows nothing about any particular head, tree or backend: it receives a target model,
 * an optional draft policy (a head plus a tree builder), a verifier and a sampler. Without a
 * policy every round verifies a one-node tree, which is plain autoregressive decoding through the
 * very same code path (the `vanilla` baseline).
 */
import type { DraftHead, DraftTree, TreeBuilder } from './draft.js';
import { ContextOverflowError, InvalidArgumentError, assert } from './errors.js';
import type { TargetModel, Tokenizer } from './model.js';
import type { Sampler, Verifier } from './sampling.js';

/** A drafting policy: a head plus the tree builder that queries it. */
export interface DraftPolicy {
  /** Name for reports, e.g. `gumiho`. */
  readonly id: string;
  readonly head: DraftHead;
  readonly builder: TreeBuilder;
  /** Largest tree (root included) to verify per round. Default 64; 1 turns drafting off (vanilla). */
  readonly maxTreeSize?: number;
}

/** Options of {@link createSpeculativeDecoder}. */
export interface SpeculativeDecoderOptions {
  readonly target: TargetModel;
  /** Needed for string prompts and for text in results. */
  readonly tokenizer?: Tokenizer;
  /** The drafting policy; omit for vanilla decoding. */
  readonly policy?: DraftPolicy;
  readonly verifier: Verifier;
  readonly sampler: Sampler;
}

/** Options of one generation. */
export interface GenerateOptions {
  /** Text (needs a tokenizer) or token ids. Must not be empty. */
  readonly prompt: string | Int32Array;
  /** Default 128. */
  readonly maxNewTokens?: number;
  /** Extra stop tokens besides the model's EOS tokens. */
  readonly stopTokenIds?: readonly number[];
  /** Stops generation cleanly (the result so far is returned). */
  readonly signal?: AbortSignal;
}

/** Where a token came from. */
export type TokenSource = 'draft' | 'target';

/** One generated token, as {@link SpeculativeDecoder.stream} yields it. */
export interface TokenEvent {
  readonly token: number;
  /** `draft` when a drafted token was accepted, `target` when the target produced it (root/bonus). */
  readonly source: TokenSource;
  /** Target forward that produced it (0 = prefill). */
  readonly round: number;
  /** New text this token completes (may be empty while a multi-byte character is incomplete). */
  readonly text: string;
}

/** Statistics of one generation. */
export interface GenerationStats {
  /** Generated tokens (EOS included when it ended the generation). */
  readonly newTokens: number;
  /** Target forwards: prefill plus verification rounds. */
  readonly rounds: number;
  /** `newTokens / rounds`: tokens per target forward, bonus included (1 for vanilla). */
  readonly meanAcceptedLength: number;
  /** `newTokens / (wallMs / 1000)`. */
  readonly tokensPerSecond: number;
  readonly wallMs: number;
  readonly prefillMs: number;
  /** Time spent building draft trees. */
  readonly draftMs: number;
  /** Time spent in target verification forwards, acceptance and KV compaction. */
  readonly verifyMs: number;
  /** `acceptanceByDepth[d]` = rounds in which a draft token at depth `d + 1` was accepted. */
  readonly acceptanceByDepth: readonly number[];
  /** Rounds that verified a tree with at least one draft node. */
  readonly draftRounds: number;
  /** Total draft nodes sent to the target. */
  readonly draftedTokens: number;
  /** Why generation stopped. */
  readonly stopReason: 'eos' | 'max-new-tokens' | 'context' | 'aborted';
}

/** Result of {@link SpeculativeDecoder.generate}. */
export interface GenerateResult {
  /** Generated text (special tokens skipped); empty without a tokenizer. */
  readonly text: string;
  /** Generated token ids (new tokens only). */
  readonly tokenIds: Int32Array;
  readonly stats: GenerationStats;
}

/** The decoder. */
export interface SpeculativeDecoder {
  /** Generates to completion. */
  generate(options: GenerateOptions): Promise<GenerateResult>;
  /** Yields tokens as they are produced; the generator's return value is the full result. */
  stream(options: GenerateOptions): AsyncGenerator<TokenEvent, GenerateResult, void>;
}

/** A tree holding only the root: what every round verifies without a draft policy. */
export function rootOnlyTree(root: number): DraftTree {
  return {
    size: 1,
    tokens: Int32Array.of(root),
    parents: Int32Array.of(-1),
    depths: Int32Array.of(0),
    scores: Float32Array.of(0),
    mask: Uint8Array.of(1),
    paths: Int32Array.of(0),
    pathCount: 1,
    pathWidth: 1,
    exact: true,
  };
}

/** Creates the decoding loop from its parts. */
export function createSpeculativeDecoder(options: SpeculativeDecoderOptions): SpeculativeDecoder {
  const decoder: SpeculativeDecoder = {
    stream: (generateOptions) => runGeneration(options, generateOptions),
    async generate(generateOptions) {
      const iterator = runGeneration(options, generateOptions);
      for (;;) {
        const step = await iterator.next();
        if (step.done) return step.value;
      }
    },
  };
  return decoder;
}

class TextStream {
  private readonly ids: number[] = [];
  private emitted = 0;
  constructor(private readonly tokenizer: Tokenizer | undefined) {}

  push(token: number): string {
    if (!this.tokenizer) return '';
    this.ids.push(token);
    const text = this.tokenizer.decode(this.ids, { skipSpecialTokens: true });
    // Hold back an incomplete multi-byte character (decoded as U+FFFD at the end).
    let end = text.length;
    while (end > this.emitted && text.charCodeAt(end - 1) === 0xfffd) end--;
    if (end <= this.emitted) return '';
    const delta = text.slice(this.emitted, end);
    this.emitted = end;
    return delta;
  }

  finish(): string {
    return this.tokenizer ? this.tokenizer.decode(this.ids, { skipSpecialTokens: true }) : '';
  }
}

function now(): number {
  return performance.now();
}

async function* runGeneration(
  parts: SpeculativeDecoderOptions,
  options: GenerateOptions,
): AsyncGenerator<TokenEvent, GenerateResult, void> {
  const { target, tokenizer, policy, verifier, sampler } = parts;
  const config = target.config;
  const maxNewTokens = options.maxNewTokens ?? 128;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new InvalidArgumentError('maxNewTokens', `maxNewTokens must be a positive integer, got ${maxNewTokens}.`);
  }
  let promptIds: Int32Array;
  if (typeof options.prompt === 'string') {
    if (!tokenizer) {
      throw new InvalidArgumentError('prompt', 'A text prompt needs a tokenizer.', {
        fix: 'pass `tokenizer` to createSpeculativeDecoder, or pass the prompt as token ids.',
      });
    }
    promptIds = tokenizer.encode(options.prompt);
  } else {
    promptIds = options.prompt;
  }
  if (promptIds.length === 0) {
    throw new InvalidArgumentError('prompt', 'The prompt is empty.', { fix: 'give a prompt with at least one token.' });
  }
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
      throw new InvalidArgumentError('prompt', `Prompt token id ${id} is outside the vocabulary (0..${config.vocabSize - 1}).`);
    }
  }
  const capacity = target.cache.spec.capacity;
  if (promptIds.length >= capacity) {
    throw new ContextOverflowError(
      `The prompt has ${promptIds.length} tokens, but the context holds ${capacity} (the prompt plus at least one generated token must fit).`,
      { fix: `shorten the prompt to at most ${capacity - 1} tokens.` },
    );
  }
  const stopTokens = new Set<number>([...config.eosTokenIds, ...(options.stopTokenIds ?? [])]);
  const hiddenSize = config.hiddenSize;
  const vocab = config.vocabSize;

  const maxTree = policy ? policy.maxTreeSize ?? 64 : 1;
  const history = new Int32Array(capacity + maxTree + 8);
  history.set(promptIds);
  let historyLength = promptIds.length;

  const generated: number[] = [];
  const text = new TextStream(tokenizer);
  const acceptanceByDepth: number[] = [];
  let rounds = 0;
  let draftRounds = 0;
  let draftedTokens = 0;
  let draftMs = 0;
  let verifyMs = 0;
  let stopReason: GenerationStats['stopReason'] = 'max-new-tokens';

  target.cache.reset();
  policy?.head.reset();
  const start = now();

  // Prefill: the whole prompt, causal; the root comes from the last row's logits.
  const positions = new Int32Array(promptIds.length);
  for (let i = 0; i < positions.length; i++) positions[i] = i;
  const prefill = await target.forward({ tokenIds: promptIds, positions });
  target.cache.commit();
  rounds = 1;
  let root = sampler.pick(prefill.logits.subarray(0, vocab), { tokens: history, length: historyLength });
  const prefillMs = now() - start;
  // The drafter consumes (f_p, x_{p+1}) pairs: prompt hidden states with the tokens shifted by one.
  let newHidden = prefill.hidden;
  let newTokens = new Int32Array(promptIds.length);
  newTokens.set(promptIds.subarray(1));
  newTokens[promptIds.length - 1] = root;

  const emit = (token: number, source: TokenSource, round: number): TokenEvent => {
    generated.push(token);
    history[historyLength++] = token;
    return { token, source, round, text: text.push(token) };
  };

  yield emit(root, 'target', 0);
  let finished = false;
  if (stopTokens.has(root)) {
    stopReason = 'eos';
    finished = true;
  } else if (generated.length >= maxNewTokens) {
    finished = true;
  }

  while (!finished) {
    if (options.signal?.aborted) {
      stopReason = 'aborted';
      break;
    }
    const committed = target.cache.length;
    const room = capacity - committed;
    if (room < 1) {
      stopReason = 'context';
      break;
    }
    const roundIndex = rounds;

    // Draft.
    let tree: DraftTree;
    const draftStart = now();
    if (policy && maxTree > 1 && room > 1) {
      tree = await policy.builder.build({
        head: policy.head,
        root,
        hidden: newHidden,
        tokens: newTokens,
        context: history.subarray(0, historyLength),
        maxSize: Math.min(maxTree, room),
      });
      assert(tree.size >= 1 && tree.tokens[0] === root, () => `tree builder ${policy.builder.id} returned a tree without the root`);
      assert(tree.size <= Math.min(maxTree, room), () => `tree builder ${policy.builder.id} exceeded maxSize`);
    } else {
      if (policy) policy.head.endRound();
      tree = rootOnlyTree(root);
    }
    const verifyStart = now();
    draftMs += verifyStart - draftStart;

    // Verify: the whole tree in one target forward.
    const treePositions = new Int32Array(tree.size);
    for (let i = 0; i < tree.size; i++) treePositions[i] = committed + tree.depths[i]!;
    const logitRows = new Int32Array(tree.size);
    for (let i = 0; i < tree.size; i++) logitRows[i] = i;
    const forward = await target.forward({
      tokenIds: tree.tokens,
      positions: treePositions,
      treeMask: tree.mask,
      logitRows,
    });
    rounds++;
    const result = verifier.verify({
      tree,
      logits: forward.logits,
      vocabSize: vocab,
      sampler,
      history: { tokens: history, length: historyLength },
    });
    target.cache.compact(result.acceptedNodes);
    if (policy) policy.head.endRound();
    verifyMs += now() - verifyStart;

    const accepted = result.acceptedLength;
    if (tree.size > 1) {
      draftRounds++;
      draftedTokens += tree.size - 1;
    }
    for (let depth = 0; depth < accepted; depth++) acceptanceByDepth[depth] = (acceptanceByDepth[depth] ?? 0) + 1;

    // Next round's drafter input: hidden states of the root and the accepted drafts, paired with
    // the token that follows each (the accepted drafts, then the bonus token).
    newHidden = new Float32Array((accepted + 1) * hiddenSize);
    newTokens = new Int32Array(accepted + 1);
    for (let i = 0; i <= accepted; i++) {
      const node = result.acceptedNodes[i]!;
      newHidden.set(forward.hidden.subarray(node * hiddenSize, (node + 1) * hiddenSize), i * hiddenSize);
      if (i > 0) newTokens[i - 1] = tree.tokens[node]!;
    }
    newTokens[accepted] = result.nextToken;

    // Emit the accepted drafts, then the bonus token.
    for (let i = 1; i <= accepted && !finished; i++) {
      const token = tree.tokens[result.acceptedNodes[i]!]!;
      yield emit(token, 'draft', roundIndex);
      if (stopTokens.has(token)) {
        stopReason = 'eos';
        finished = true;
      } else if (generated.length >= maxNewTokens) {
        finished = true;
      }
    }
    if (finished) break;
    root = result.nextToken;
    yield emit(root, 'target', roundIndex);
    if (stopTokens.has(root)) {
      stopReason = 'eos';
      finished = true;
    } else if (generated.length >= maxNewTokens) {
      finished = true;
    }
  }
  if (policy) policy.head.endRound();

  const wallMs = now() - start;
  const stats: GenerationStats = {
    newTokens: generated.length,
    rounds,
    meanAcceptedLength: generated.length / rounds,
    tokensPerSecond: wallMs > 0 ? generated.length / (wallMs / 1000) : 0,
    wallMs,
    prefillMs,
    draftMs,
    verifyMs,
    acceptanceByDepth,
    draftRounds,
    draftedTokens,
    stopReason,
  };
  return { text: text.finish(), tokenIds: Int32Array.from(generated), stats };
}

