"""Eq. 5 / Eq. 6 of the m-RNN paper: log2 perplexity per sentence and split."""

import math

from absl.testing import absltest
import numpy as np

from capjax.metrics import perplexity


class Log2PerplexityTest(absltest.TestCase):

  def test_sentence_bits_per_word_by_hand(self):
    # Sentence 0: words with P = 1/2 and 1/8 -> (1 + 3) / 2 = 2 bits.
    # Sentence 1: P = 1/4, 1/16, 1/16 -> (2 + 4 + 4) / 3 bits.
    sums = np.array([math.log(1 / 2) + math.log(1 / 8),
                     math.log(1 / 4) + math.log(1 / 16) + math.log(1 / 16)])
    lengths = np.array([2, 3])
    np.testing.assert_allclose(
        perplexity.sentence_log2_perplexity(sums, lengths),
        [2.0, 10 / 3], rtol=1e-6)
    # The split pools words: (4 + 10) bits over 5 words.
    self.assertAlmostEqual(
        float(perplexity.split_log2_perplexity(sums, lengths)), 14 / 5,
        places=5)
    self.assertAlmostEqual(
        float(perplexity.corpus_perplexity(sums, lengths)), 2 ** (14 / 5),
        places=3)


if __name__ == '__main__':
  absltest.main()
