import json
import os
import tempfile
import unittest

import numpy as np
import torch

from _path import ROOT  # noqa: F401
from train_heads.safetensors_io import (f32_to_bf16_bits, load_file, load_hf_folder_weights, read_header,
                                        save_file)


class TestSafetensors(unittest.TestCase):
    def test_round_trip_dtypes(self):
        g = torch.Generator().manual_seed(0)
        t = {"a.weight": torch.randn(7, 5, generator=g), "b": torch.randn(3, generator=g) * 1e3,
             "ids": torch.arange(6, dtype=torch.int64).view(2, 3)}
        with tempfile.TemporaryDirectory() as d:
            for dt, tol in (("F32", 0.0), ("F16", 1e-3), ("BF16", 8e-3)):
                p = os.path.join(d, f"x_{dt}.safetensors")
                save_file(t, p, dtype=dt, metadata={"k": "v"})
                header, base = read_header(p)
                self.assertEqual(base % 8, 0)
                self.assertEqual(header["a.weight"]["dtype"], dt)
                self.assertEqual(header["a.weight"]["shape"], [7, 5])
                self.assertEqual(header["__metadata__"], {"k": "v"})
                back = load_file(p)
                for k in t:
                    self.assertEqual(tuple(back[k].shape), tuple(t[k].shape))
                    if t[k].is_floating_point():
                        rel = ((back[k] - t[k]).abs() / t[k].abs().clamp_min(1e-6)).max().item()
                        self.assertLessEqual(rel, tol, (dt, k))
                    else:
                        self.assertTrue(torch.equal(back[k], t[k]))
                # byte-exact second round trip
                p2 = p + ".2"
                save_file(back, p2, dtype=dt, metadata={"k": "v"})
                with open(p, "rb") as f1, open(p2, "rb") as f2:
                    self.assertEqual(f1.read(), f2.read())

    def test_bf16_rounding_matches_torch(self):
        x = torch.randn(10000) * 10
        ours = torch.from_numpy(f32_to_bf16_bits(x.numpy()).astype(np.int16)).view(torch.bfloat16)
        self.assertTrue(torch.equal(ours, x.to(torch.bfloat16)))
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.safetensors")
            save_file({"x": x}, p, dtype="BF16")
            self.assertTrue(torch.equal(load_file(p)["x"], x.to(torch.bfloat16).float()))
            self.assertEqual(load_file(p, dtype=None)["x"].dtype, torch.bfloat16)

    def test_sharded_folder(self):
        with tempfile.TemporaryDirectory() as d:
            save_file({"a": torch.ones(2)}, os.path.join(d, "s1.safetensors"), dtype="F32")
            save_file({"b": torch.zeros(3)}, os.path.join(d, "s2.safetensors"), dtype="F16")
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}, f)
            w = load_hf_folder_weights(d)
            self.assertEqual(sorted(w), ["a", "b"])
            self.assertEqual(w["b"].dtype, torch.float32)


if __name__ == "__main__":
    unittest.main()
