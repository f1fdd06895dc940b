"""Tests of `capjax.benchmark retrieval --model=mrnn` on tiny sizes: every
path scores the same pairs, and the share counts only real items."""

import types

from absl.testing import absltest
import numpy as np

from capjax.benchmarks import likelihood_retrieval
from capjax.models.retrieval import likelihood


class LikelihoodBenchmarkTest(absltest.TestCase):

  def test_records_of_both_settings_agree_across_paths(self):
    records = likelihood_retrieval.run(dict(
        model='mrnn', retrieval_images=2, repeats=1, warmup=0, vocab=40,
        max_len=8, dtype=('float32',)))
    self.assertEqual([r['setting'] for r in records],
                     list(likelihood_retrieval.SETTINGS))
    for record in records:
      self.assertEqual((record['path'], record['pairs']), ('packed', 20))
      for path in ('padded', 'adapter', 'naive'):
        self.assertLess(record[f'max_abs_diff_vs_{path}'], 1e-3, path)
        self.assertGreater(record[f'{path}_pairs_per_s'], 0)
      self.assertGreater(record['gflop'], 0)
      self.assertAlmostEqual(record['achieved_gflop_per_s'],
                             record['gflop'] / record['seconds'])
      self.assertGreater(record['real_item_share'], 0)
      self.assertLessEqual(record['real_item_share'], 1)

  def test_real_item_share_is_real_items_over_tiled_items(self):
    weights = np.zeros((10, 8), np.float32)
    weights[:, :3] = 1  # 30 real positions: one block of 32
    images = np.zeros((2, 4), np.float32)
    inputs = np.zeros((10, 8), np.int32)
    share = likelihood_retrieval._real_item_share(
        (images, inputs, inputs, weights), types.SimpleNamespace(size=1))
    (block_i, image_blocks), (block_p, position_blocks) = (
        likelihood.packed_blocks(2, 30, likelihood_retrieval.CHUNK * 8))
    self.assertEqual((block_i * image_blocks, block_p * position_blocks),
                     (2, 32))
    self.assertAlmostEqual(share, 2 * 30 / (2 * 32))


if __name__ == '__main__':
  absltest.main()
