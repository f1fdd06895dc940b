"""Hashtag metrics against hand-computed answers and a plain BLEU-1 loop."""

import collections
import math

from absl.testing import absltest
import numpy as np

from capjax.metrics import tags


def _plain_bleu1(predicted, references):
  """Corpus BLEU-1 with one reference: clipped unigram precision x BP."""
  matched = guessed = cand_len = ref_len = 0
  for pred, ref in zip(predicted, references):
    ref_counts = collections.Counter(ref)
    for word, count in collections.Counter(pred).items():
      matched += min(count, ref_counts[word])
    guessed += len(pred)
    cand_len += len(pred)
    ref_len += len(ref)
  precision = matched / guessed
  penalty = 1.0 if cand_len >= ref_len else math.exp(1 - ref_len / cand_len)
  return precision * penalty


class TagMetricsTest(absltest.TestCase):

  def test_bleu1_equals_the_plain_formula(self):
    rng = np.random.default_rng(0)
    words = [f't{i}' for i in range(12)]
    for _ in range(5):
      predicted = [list(rng.choice(words, rng.integers(1, 6)))
                   for _ in range(20)]
      references = [list(rng.choice(words, rng.integers(1, 8), replace=False))
                    for _ in range(20)]
      self.assertAlmostEqual(
          tags.bleu1(predicted, references),
          _plain_bleu1(predicted, references), places=6)

  def test_precision_recall_f1_at_k_by_hand(self):
    ranked = [['a', 'b', 'c', 'd'], ['x'], ['a', 'a', 'b']]
    truth = [['a', 'c'], ['y', 'z'], ['b']]
    at_3 = tags.precision_recall_f1_at_k(ranked, truth, 3)
    np.testing.assert_allclose(at_3['precision'], [2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(at_3['recall'], [1, 0, 1])
    np.testing.assert_allclose(at_3['f1'], [0.8, 0, 0.5])

  def test_tag_scores_uses_the_ranking_for_at_k(self):
    scores = tags.tag_scores([['a']], [['a', 'b']], k=2,
                             ranked=[['b', 'a']])
    self.assertAlmostEqual(scores['P@2'], 1.0)
    self.assertAlmostEqual(scores['R@2'], 1.0)
    self.assertAlmostEqual(scores['Bleu_1'], math.exp(1 - 2))

  def test_bad_k_is_named(self):
    with self.assertRaisesRegex(ValueError, 'k must be'):
      tags.precision_recall_f1_at_k([['a']], [['a']], 0)


if __name__ == '__main__':
  absltest.main()
