import os
import unittest

import torch

from _path import ROOT  # noqa: F401
from train_heads.check import check_against_golden
from train_heads.common import DEFAULT_GOLDEN, DEFAULT_TARGET

torch.set_num_threads(2)


@unittest.skipUnless(os.path.exists(DEFAULT_GOLDEN) and os.path.isdir(DEFAULT_TARGET), "golden fixture / target not available")
class TestLlamaGolden(unittest.TestCase):
    def test_matches_hf_fixture(self):
        res = check_against_golden(DEFAULT_TARGET, DEFAULT_GOLDEN, tol=1e-3, greedy=True)
        self.assertEqual(len(res), 4)
        for r in res:
            self.assertLessEqual(r["maxLogitDiff"], 1e-3, r)
            self.assertLessEqual(r["maxTop10LogitDiff"], 1e-3, r)
            self.assertTrue(r["top10Match"], r)
            self.assertTrue(r["greedyMatch"], r)


if __name__ == "__main__":
    unittest.main()
