import json
import os
import tempfile
import unittest

import torch

from _path import ROOT  # noqa: F401
from train_heads.__main__ import main
from train_heads.export import load_exported
from train_heads.heads import DraftHeads, HeadsConfig
from train_heads.llama import causal_mask, load_llama
from train_heads.safetensors_io import read_header

torch.set_num_threads(2)


class TestSmokeExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = cls.tmp.name
        main(["smoke", "--out", cls.out, "--steps", "2"])
        with open(os.path.join(cls.out, "reference.json")) as f:
            cls.ref = json.load(f)
        cls.target = load_llama(os.path.join(cls.out, "target"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_layout_and_config(self):
        H = 64
        for kind in ("gumiho", "eagle2", "medusa"):
            d = os.path.join(self.out, kind)
            with open(os.path.join(d, "config.json")) as f:
                cfg = json.load(f)
            self.assertEqual(cfg["format"], "gumiho-heads")
            self.assertEqual(cfg["formatVersion"], 1)
            self.assertEqual(cfg["kind"], kind)
            self.assertEqual(len(cfg["target"]["configSha256"]), 64)
            header, _ = read_header(os.path.join(d, "model.safetensors"))
            keys = {k: v for k, v in header.items() if k != "__metadata__"}
            for v in keys.values():
                self.assertEqual(v["dtype"], "BF16")
            self.assertFalse(any("embed" in k or "lm_head" in k for k in keys))
            if kind in ("gumiho", "eagle2"):
                self.assertEqual(keys["fc.weight"]["shape"], [H, 2 * H])
                self.assertEqual(keys["fc.bias"]["shape"], [H])
                self.assertNotIn("layers.0.input_layernorm.weight", keys)
                self.assertIn("layers.0.post_attention_layernorm.weight", keys)
                self.assertEqual(keys["layers.0.self_attn.k_proj.weight"]["shape"], [2 * 16, H])
            if kind == "gumiho":
                self.assertEqual((cfg["serialLayers"], cfg["mlpHeads"], cfg["mlpBlocks"]), (2, 5, 6))
                self.assertIn("layers.1.input_layernorm.weight", keys)
                self.assertEqual(keys["mlp.0.0.linear.weight"]["shape"], [H, 2 * H])
                self.assertEqual(keys["mlp.4.5.linear.weight"]["shape"], [H, H])
                self.assertNotIn("mlp.0.6.linear.weight", keys)
            if kind == "eagle2":
                self.assertEqual((cfg["serialLayers"], cfg["mlpHeads"], cfg["mlpBlocks"]), (1, 0, 0))
                self.assertFalse(any(k.startswith(("mlp.", "layers.1.")) for k in keys))
            if kind == "medusa":
                self.assertEqual((cfg["serialLayers"], cfg["mlpHeads"]), (0, 5))
                self.assertFalse(cfg["fcBias"])
                self.assertFalse(any(k.startswith(("fc.", "layers.")) for k in keys))
                self.assertEqual(keys["mlp.4.0.linear.weight"]["shape"], [H, H])
                self.assertEqual(len([k for k in keys if k.startswith("mlp.0.")]), 2 * cfg["mlpBlocks"])

    def test_reference_reproduces(self):
        for kind, r in self.ref["kinds"].items():
            m, _ = load_exported(os.path.join(self.out, r["heads"]), self.target)
            feats = torch.tensor(r["features"])
            toks = torch.tensor(r["tokens"])
            self.assertEqual(len(r["positions"]), r["n"])
            with torch.no_grad():
                if "serialHidden" in r:
                    h = m.serial(feats[None], toks[None])[0]
                    self.assertLess((h - torch.tensor(r["serialHidden"])).abs().max().item(), 1e-5)
                    top = m.lm(h[-1]).topk(5)
                    self.assertEqual(top.indices.tolist(), r["serialLogits"]["ids"])
                if "mlpOutputs" in r:
                    z = torch.tensor(r["mlpInput"]) if kind == "gumiho" else feats[-1]
                    o = m.mlp_all(z[None])[:, 0]
                    self.assertEqual(tuple(o.shape), (5, 64))
                    self.assertLess((o - torch.tensor(r["mlpOutputs"])).abs().max().item(), 1e-5)
            # features really are the target's hidden states for targetInputIds
            with torch.no_grad():
                f = self.target.hidden(torch.tensor([self.ref["targetInputIds"]]))[0, : r["n"]]
            self.assertLess((f - feats).abs().max().item(), 1e-5)

    def test_multi_step_matches_sequential(self):
        """serial_steps (all roots at once) == explicit re-run of the decoder per root."""
        g = torch.Generator().manual_seed(3)
        m, _ = load_exported(os.path.join(self.out, "gumiho"), self.target)
        T = 9
        feats = torch.randn(1, T, 64, generator=g)
        toks = torch.randint(0, 256, (1, T), generator=g)
        nts = [torch.randint(0, 256, (1, T), generator=g) for _ in range(2)]
        with torch.no_grad():
            outs = m.serial_steps(feats, toks, nts)
            for t in range(T):
                f_seq, x_seq = feats[:, : t + 1], toks[:, : t + 1]
                h = m.serial(f_seq, x_seq)[:, -1:]
                self.assertLess((h[0, 0] - outs[0][0, t]).abs().max().item(), 1e-4)
                for d in range(2):
                    f_seq = torch.cat([f_seq, h], 1)
                    x_seq = torch.cat([x_seq, nts[d][:, t : t + 1]], 1)
                    h = m.serial(f_seq, x_seq)[:, -1:]
                    self.assertLess((h[0, 0] - outs[d + 1][0, t]).abs().max().item(), 1e-4)

    def test_eval_on_greedy_path(self):
        """eval --on greedy: inputs are the target's greedy continuation, only continuation roots count,
        and depth-1 accuracy equals a brute-force per-root re-run of the serial step."""
        from train_heads import evaluate

        g = torch.Generator().manual_seed(5)
        files = [{"path": f"f{i}.py", "ids": torch.randint(1, 256, (40,), generator=g).tolist()} for i in range(3)]
        saved = evaluate.dev_tokens
        evaluate.dev_tokens = lambda target, data: files
        try:
            args = type("A", (), dict(target=os.path.join(self.out, "target"), data="-", heads=[os.path.join(self.out, "gumiho")],
                                      max_files=0, max_len=512, max_tokens=0, windows_per_file=0, depths=3, on="greedy",
                                      prompt_len=12, gen_len=10, md=None, json=None))()
            table = evaluate.run_eval(args)
        finally:
            evaluate.dev_tokens = saved
        self.assertEqual(table["on"], "greedy")
        self.assertAlmostEqual(table["dataEqualsGreedy"], 1.0)
        h = table["heads"]["gumiho"]
        self.assertEqual(h["positions"], 3 * (10 + 1 - 3))  # roots t = 11 .. T-1-D per file
        m, _ = load_exported(os.path.join(self.out, "gumiho"), self.target)
        ok = n = 0
        for f in files:
            w = f["ids"][:12] + self.target.greedy(f["ids"][:12], 10)
            X = torch.tensor([w])
            with torch.no_grad():
                Fh = self.target.hidden(X)
                G = self.target.logits(Fh)[0].argmax(-1)
                for t in range(11, len(w) - 3):
                    h1 = m.serial(Fh[:, : t + 1], X[:, 1 : t + 2])[:, -1]
                    ok += int(m.lm(h1)[0].argmax()) == int(G[t + 1])
                    n += 1
        self.assertEqual(n, h["positions"])
        self.assertAlmostEqual(h["acc"][0], ok / n)

        # Alignment: a fake draft that is right exactly at even roots t (pred at depth d = G[t+d])
        # must score (even roots in t = 11 .. T-1-D) / roots at every depth.
        target = self.target

        def fake(model, X, Fh, depths):
            G = target.logits(Fh)[0].argmax(-1)
            T = X.shape[1]
            out = []
            for d in range(1, depths + 1):
                p = torch.full((T,), -1, dtype=torch.long)
                for t in range(0, T - d, 2):
                    p[t] = G[t + d]
                out.append(p)
            return out

        saved_dp = evaluate.depth_predictions
        evaluate.depth_predictions = fake
        evaluate.dev_tokens = lambda target, data: files
        try:
            table = evaluate.run_eval(args)
        finally:
            evaluate.dev_tokens = saved
            evaluate.depth_predictions = saved_dp
        even = sum(1 for t in range(11, 22 - 3) if t % 2 == 0) / len(range(11, 22 - 3))
        for d in range(3):
            self.assertAlmostEqual(table["heads"]["gumiho"]["acc"][d], even)
            self.assertAlmostEqual(table["heads"]["gumiho"]["cumAcc"][d], even)

    def test_greedy_features_and_mixed_folders(self):
        """features --greedy-prompt/--greedy-gen: the stored ids are prompt + the target's own greedy
        continuation and the stored hidden states equal a full teacher-forced forward over them; train
        loads several folders (split to one length with --seq-len)."""
        import numpy as np
        from types import SimpleNamespace
        from train_heads.features import run_features
        from train_heads.train import load_features

        tdir = os.path.join(self.out, "target")
        g = torch.Generator().manual_seed(7)
        toks = torch.randint(1, 256, (4 * 16,), generator=g).numpy().astype("<u2")
        with tempfile.TemporaryDirectory() as tmp:
            fg, fd = os.path.join(tmp, "greedy"), os.path.join(tmp, "data")
            for d in (fg, fd):
                os.makedirs(d)
                toks.tofile(os.path.join(d, "tokens.u16"))
            base = dict(target=tdir, data="-", tokens=64, shard_chunks=2, batch=2, reverse=False)
            run_features(SimpleNamespace(**base, out=fg, seq_len=16, greedy_prompt=6, greedy_gen=10))
            run_features(SimpleNamespace(**base, out=fd, seq_len=32, greedy_prompt=0, greedy_gen=0))
            with open(os.path.join(fg, "meta.json")) as f:
                self.assertEqual(json.load(f)["mode"], "greedy")
            ids, hid = load_features([fg])
            self.assertEqual(tuple(ids.shape), (4, 16))
            src = torch.from_numpy(toks.astype(np.int64)).view(4, 16)
            with torch.no_grad():
                full = self.target.hidden(ids)
                full_argmax = self.target.logits(full).argmax(-1)
            for r in range(4):
                self.assertEqual(ids[r, :6].tolist(), src[r, :6].tolist())
                # every generated token is the argmax of an uncached forward over what precedes it
                self.assertEqual(ids[r, 6:].tolist(), full_argmax[r, 5:15].tolist())
                self.assertEqual(ids[r, 6:].tolist(), self.target.greedy(src[r, :6].tolist(), 10))
            self.assertLess((full - hid.float()).abs().max().item(), 2e-2)  # fp16 storage
            with self.assertRaises(SystemExit):
                load_features([fg, fd])  # 16 vs 32 tokens per sequence
            ids2, hid2 = load_features([fg, fd, fg], seq_len=16)
            self.assertEqual(tuple(ids2.shape), (4 + 4 + 4, 16))
            self.assertEqual(ids2[8:].tolist(), ids.tolist())
            # a stop request (SIGINT/SIGTERM) leaves no partial shard behind
            from train_heads.features import _write_shards, list_shards
            fs = os.path.join(tmp, "stopped")
            os.makedirs(fs)
            _write_shards(SimpleNamespace(out=fs, shard_chunks=2, batch=2, greedy_prompt=6), self.target, src, range(2),
                          4, 2, 16, 10, {"flag": True})
            self.assertEqual(list_shards(fs), [])
            self.assertEqual(os.listdir(fs), [])
            with self.assertRaises(SystemExit):  # 6 + 11 != 16
                run_features(SimpleNamespace(**base, out=os.path.join(tmp, "bad"), seq_len=16, greedy_prompt=6, greedy_gen=11))

    def test_skip_tokens_and_init_from_exported(self):
        """features --skip-tokens starts later in the text (and refuses to mix settings in one folder);
        train --init-from takes an exported heads folder, and the export of the new run lists every stage."""
        import numpy as np
        from types import SimpleNamespace
        from train_heads.features import run_features
        from train_heads.safetensors_io import load_file
        from train_heads.train import load_features

        tdir = os.path.join(self.out, "target")
        toks = torch.randint(1, 256, (96,), generator=torch.Generator().manual_seed(3)).numpy().astype("<u2")
        with tempfile.TemporaryDirectory() as tmp:
            fd = os.path.join(tmp, "data")
            os.makedirs(fd)
            toks.tofile(os.path.join(fd, "tokens.u16"))
            base = dict(target=tdir, data="-", shard_chunks=2, batch=2, reverse=False, seq_len=16, greedy_prompt=0, greedy_gen=0)
            run_features(SimpleNamespace(**base, out=fd, tokens=64, skip_tokens=32))
            ids, _ = load_features([fd])
            self.assertEqual(ids.flatten().tolist(), toks[32:96].astype(np.int64).tolist())
            with self.assertRaises(SystemExit):  # same folder, other start
                run_features(SimpleNamespace(**base, out=fd, tokens=64, skip_tokens=0))
            smoke = os.path.join(self.out, "gumiho")
            train = ["--threads", "1", "train", "--kind", "gumiho", "--target", tdir, "--features", fd,
                     "--epochs", "1", "--batch", "2", "--lr", "0", "--warmup", "5", "--log-every", "1"]
            with self.assertRaises(SystemExit):  # heads of another kind
                main(train[:4] + ["eagle2"] + train[5:] + ["--out", os.path.join(tmp, "bad"), "--init-from", smoke])
            prev = smoke
            for hop in (1, 2):
                run, exp = os.path.join(tmp, f"run{hop}"), os.path.join(tmp, f"exp{hop}")
                main(train + ["--out", run, "--init-from", prev])
                main(["export", "--run", run, "--out", exp, "--target", tdir])
                a = load_file(os.path.join(smoke, "model.safetensors"), torch.float32)
                b = load_file(os.path.join(exp, "model.safetensors"), torch.float32)
                self.assertEqual(sorted(a), sorted(b))
                for k in a:  # lr 0: the weights are the exported ones, unchanged
                    self.assertTrue(torch.equal(a[k], b[k]), k)
                with open(os.path.join(exp, "config.json")) as f:
                    stages = json.load(f)["training"]["stages"]
                self.assertEqual(len(stages), 1 + hop)  # the smoke run, then one stage per hop
                self.assertEqual(stages[0]["steps"], 2)
                self.assertEqual(stages[-1]["features"], ["data"])
                prev = exp


if __name__ == "__main__":
    unittest.main()
