// Tokenize text for train_heads with @huggingface/tokenizers (pure JS).
// Usage:
//   node tokenize.mjs MODEL_DIR stream IN.txt OUT.u16      -> uint16 LE token stream; documents split
//                                                          on "<|endoftext|>" (encoded as its id)
//   node tokenize.mjs MODEL_DIR jsonl  IN.jsonl OUT.json   -> [{"path", "ids"}] for each line's "text"
//   node tokenize.mjs MODEL_DIR text   "some text"         -> prints JSON ids
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const searchPaths = [
  process.env.TRAIN_HEADS_TOKENIZERS_DIR,
  path.join(here, "..", "work", "node"),
  path.join(here, ".."),
  path.join(here, "..", "..", ".."),
].filter(Boolean);
let modPath;
try {
  modPath = require.resolve("@huggingface/tokenizers", { paths: searchPaths });
} catch (e) {
  console.error(
    "cannot find @huggingface/tokenizers; run `pnpm install` at the repository root (it is a dependency of @gumiho/train-heads), or: npm i --prefix tooling/train-heads/work/node @huggingface/tokenizers@0.2.0",
  );
  process.exit(2);
}
const { Tokenizer } = require(modPath);

const [modelDir, mode, a, b] = process.argv.slice(2);
const tj = JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer.json"), "utf8"));
const tc = JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer_config.json"), "utf8"));
const tok = new Tokenizer(tj, tc);
const SEP = "<|endoftext|>";
const sepId = tok.encode(SEP).ids;
if (sepId.length !== 1) throw new Error("separator is not a single token: " + sepId);

if (mode === "text") {
  console.log(JSON.stringify(tok.encode(a).ids));
} else if (mode === "stream") {
  const text = fs.readFileSync(a, "utf8");
  const docs = text.split(SEP);
  const out = [];
  for (let i = 0; i < docs.length; i++) {
    if (i > 0) out.push(sepId[0]);
    if (docs[i].length) for (const id of tok.encode(docs[i]).ids) out.push(id);
  }
  const buf = Buffer.alloc(out.length * 2);
  for (let i = 0; i < out.length; i++) buf.writeUInt16LE(out[i], i * 2);
  fs.writeFileSync(b, buf);
  console.log(JSON.stringify({ tokens: out.length, docs: docs.length }));
} else if (mode === "jsonl") {
  const lines = fs.readFileSync(a, "utf8").split("\n").filter((l) => l.trim());
  const res = lines.map((l) => {
    const o = JSON.parse(l);
    return { path: o.path, ids: tok.encode(o.text).ids };
  });
  fs.writeFileSync(b, JSON.stringify(res));
  console.log(JSON.stringify({ files: res.length }));
} else {
  console.error("unknown mode " + mode);
  process.exit(2);
}
