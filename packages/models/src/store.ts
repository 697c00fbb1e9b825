/**
 * The local model store: a git-ignored folder (by default `<repo>/.models/`) that holds one
 * folder per named model, filled on first use from a configured source folder (by default
 * `<repo>/../shared/models`), with SHA-256 verification against a manifest committed in this
 * package. A model is copied into a temporary folder and renamed into place only after every file
 * has passed its checksum, so an interrupted or failed fill leaves nothing behind.
 *
 * Not a downloader from the internet: the source is a folder (a network mount works too).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError, ModelLoadError } from '@gumiho/core';
import pyLlama28m from '../manifests/py-llama-28m.json' with { type: 'json' };

/** One file of a {@link ModelManifest}. */
export interface ManifestFile {
  /** Path relative to the model folder. */
  readonly path: string;
  readonly size: number;
  /** Lower-case hex SHA-256 of the file's bytes. */
  readonly sha256: string;
}

/** What a named model consists of. */
export interface ModelManifest {
  readonly name: string;
  readonly files: readonly ManifestFile[];
}

/** The manifests of the models that can be named (`--model py-llama-28m`). */
export const BUILTIN_MANIFESTS: ReadonlyMap<string, ModelManifest> = new Map([[pyLlama28m.name, pyLlama28m as ModelManifest]]);

/** The default model name. */
export const DEFAULT_MODEL = 'py-llama-28m';

/** Progress of a store fill, reported after each chunk. */
export interface StoreProgress {
  readonly model: string;
  /** The file being copied. */
  readonly file: string;
  /** Bytes copied so far, over all files. */
  readonly bytes: number;
  /** Bytes of all files. */
  readonly totalBytes: number;
}

/** Options of {@link resolveModel}. */
export interface ResolveModelOptions {
  /** Repository root used for the defaults below (default: the current directory). */
  readonly root?: string;
  /** Store folder. Default: `$GUMIHO_MODEL_STORE`, else `<root>/.models`. */
  readonly store?: string;
  /** Source folder holding `<name>/`. Default: `$GUMIHO_MODEL_SOURCE`, else `<root>/../shared/models`. */
  readonly source?: string;
  /** Manifests to resolve names with (default {@link BUILTIN_MANIFESTS}). */
  readonly manifests?: ReadonlyMap<string, ModelManifest>;
  /** Called while a model is copied into the store. */
  readonly onProgress?: (progress: StoreProgress) => void;
  /** Environment to read `GUMIHO_MODEL_STORE` / `GUMIHO_MODEL_SOURCE` from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** True when `spec` names a folder rather than a model of the store. */
export function isModelPath(spec: string): boolean {
  return spec.includes('/') || spec.includes('\\') || spec.startsWith('.') || isAbsolute(spec);
}

/**
 * Finds the repository root: the nearest folder at or above `start` that holds
 * `pnpm-workspace.yaml`; `start` itself when there is none.
 */
export function findRepositoryRoot(start: string): string {
  let folder = resolve(start);
  for (;;) {
    if (existsSync(join(folder, 'pnpm-workspace.yaml'))) return folder;
    const parent = dirname(folder);
    if (parent === folder) return resolve(start);
    folder = parent;
  }
}

/**
 * Resolves `--model`: a path (anything with a slash, or starting with a dot) is returned as an
 * absolute path, untouched; a name is looked up in the manifests and returned as its store
 * folder, which is filled from the source first if needed.
 *
 * @throws InvalidArgumentError for an unknown name; ModelLoadError when the source lacks a file,
 *   a checksum does not match, or the stored copy is damaged.
 */
export async function resolveModel(spec: string, options: ResolveModelOptions = {}): Promise<string> {
  if (isModelPath(spec)) return resolve(spec);
  const manifests = options.manifests ?? BUILTIN_MANIFESTS;
  const manifest = manifests.get(spec);
  if (!manifest) {
    throw new InvalidArgumentError('model', `Unknown model "${spec}"; known models: ${[...manifests.keys()].join(', ')}.`, {
      fix: 'pass one of the known model names, or the path of a Hugging Face model folder (e.g. ./my-model).',
    });
  }
  const env = options.env ?? process.env;
  const root = resolve(options.root ?? process.cwd());
  const store = resolve(options.store ?? env.GUMIHO_MODEL_STORE ?? join(root, '.models'));
  const source = resolve(options.source ?? env.GUMIHO_MODEL_SOURCE ?? join(root, '..', 'shared', 'models'));
  const folder = join(store, manifest.name);
  if (existsSync(folder)) {
    await checkStored(folder, manifest);
    return folder;
  }
  await fillStore(manifest, join(source, manifest.name), store, options.onProgress);
  return folder;
}

/** Cheap check of a stored model on each use: every file is there with its manifest size. */
async function checkStored(folder: string, manifest: ModelManifest): Promise<void> {
  for (const file of manifest.files) {
    let size: number | undefined;
    try {
      size = (await stat(join(folder, file.path))).size;
    } catch {
      size = undefined;
    }
    if (size !== file.size) {
      throw new ModelLoadError(
        `The stored model ${folder} is damaged: ${file.path} ${size === undefined ? 'is missing' : `has ${size} bytes instead of ${file.size}`}.`,
        { path: folder, fix: `delete ${folder} and run again; it will be copied afresh from the model source.` },
      );
    }
  }
}

async function copyWithHash(from: string, to: string, onChunk: (bytes: number) => void): Promise<string> {
  const hash = createHash('sha256');
  await new Promise<void>((resolvePromise, reject) => {
    const input = createReadStream(from);
    const output = createWriteStream(to);
    input.on('data', (chunk) => {
      hash.update(chunk);
      onChunk(chunk.length);
    });
    input.on('error', reject);
    output.on('error', reject);
    output.on('finish', () => resolvePromise());
    input.pipe(output);
  });
  return hash.digest('hex');
}

/**
 * Copies a model from `sourceFolder` into `<store>/<manifest.name>`, verifying sizes and SHA-256
 * against `manifest`. Writes into a temporary folder and renames it into place at the end; on any
 * failure the temporary folder is removed.
 */
export async function fillStore(
  manifest: ModelManifest,
  sourceFolder: string,
  store: string,
  onProgress?: (progress: StoreProgress) => void,
): Promise<string> {
  for (const file of manifest.files) {
    const path = join(sourceFolder, file.path);
    if (!existsSync(path)) {
      throw new ModelLoadError(`Cannot fill the model store: the source lacks ${path}.`, {
        path,
        fix: `set GUMIHO_MODEL_SOURCE to a folder that holds ${manifest.name}/ (default: ../shared/models relative to the repository root), or pass --model <path> to use a folder directly.`,
      });
    }
  }
  await mkdir(store, { recursive: true });
  await removeStaleTemporaries(store, manifest.name);
  const final = join(store, manifest.name);
  const temporary = join(store, `.${manifest.name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const totalBytes = manifest.files.reduce((sum, file) => sum + file.size, 0);
  let bytes = 0;
  try {
    await mkdir(temporary);
    for (const file of manifest.files) {
      const target = join(temporary, file.path);
      await mkdir(dirname(target), { recursive: true });
      const digest = await copyWithHash(join(sourceFolder, file.path), target, (chunk) => {
        bytes += chunk;
        onProgress?.({ model: manifest.name, file: file.path, bytes, totalBytes });
      });
      const size = (await stat(target)).size;
      if (digest !== file.sha256 || size !== file.size) {
        throw new ModelLoadError(
          `Checksum mismatch for ${file.path} of ${manifest.name}: expected ${file.size} bytes with SHA-256 ${file.sha256}, received ${size} bytes with SHA-256 ${digest}.`,
          { path: join(sourceFolder, file.path), fix: `replace ${join(sourceFolder, file.path)} with an intact copy (nothing was written to the store).` },
        );
      }
    }
    try {
      await rename(temporary, final);
    } catch (error) {
      // Another process filled the store first: keep its copy.
      if (!existsSync(final)) throw error;
      await rm(temporary, { recursive: true, force: true });
    }
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
  return final;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary folders of `name` left in `store` by fills whose process has died (killed mid-copy). */
async function removeStaleTemporaries(store: string, name: string): Promise<void> {
  const prefix = `.${name}.tmp-`;
  for (const entry of await readdir(store)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !processIsAlive(pid)) await rm(join(store, entry), { recursive: true, force: true });
  }
}

/** Builds the manifest of a model folder (every regular file, recursively, sorted by path). */
export async function createManifest(name: string, folder: string): Promise<ModelManifest> {
  const files: ManifestFile[] = [];
  async function walk(relative: string): Promise<void> {
    const entries = await readdir(join(folder, relative), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const bytes = await readFile(join(folder, path));
        files.push({ path, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      }
    }
  }
  await walk('');
  return { name, files };
}

/**
 * A progress renderer for {@link ResolveModelOptions.onProgress} that draws a one-line bar on a
 * TTY stream (`\r`-updated) and prints a line every 25% otherwise.
 */
export function createProgressBar(stream: NodeJS.WriteStream = process.stderr): (progress: StoreProgress) => void {
  let lastQuarter = -1;
  let lastDraw = 0;
  return (progress) => {
    const fraction = progress.totalBytes > 0 ? progress.bytes / progress.totalBytes : 1;
    const done = progress.bytes >= progress.totalBytes;
    const mb = (value: number): string => (value / 1e6).toFixed(1);
    if (stream.isTTY) {
      const now = Date.now();
      if (!done && now - lastDraw < 100) return;
      lastDraw = now;
      const width = 30;
      const filled = Math.round(fraction * width);
      stream.write(
        `\rFetching ${progress.model} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${mb(progress.bytes)}/${mb(progress.totalBytes)} MB ${progress.file}\x1b[K${done ? '\n' : ''}`,
      );
      return;
    }
    const quarter = Math.floor(fraction * 4);
    if (quarter !== lastQuarter) {
      lastQuarter = quarter;
      stream.write(`Fetching ${progress.model}: ${(fraction * 100).toFixed(0)}% (${mb(progress.bytes)}/${mb(progress.totalBytes)} MB)\n`);
    }
  };
}
