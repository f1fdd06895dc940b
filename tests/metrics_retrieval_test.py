"""Retrieval metrics and perplexity on hand-computed cases."""

import math

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from capjax.metrics import perplexity
from capjax.metrics import retrieval

# 2 images x 4 captions; captions 0, 1 describe image 0, captions 2, 3 image 1.
SCORES = np.array([[0.9, 0.1, 0.9, 0.3],
                   [0.2, 0.5, 0.5, 0.4]])
CAPTION_IMAGE = np.array([0, 0, 1, 1])


class RetrievalTest(absltest.TestCase):

  def test_image_to_text_ties_count_against_the_truth(self):
    # Image 0: its best caption (0.9) ties with caption 2 -> rank 1.
    # Image 1: its best caption (0.5) ties with caption 1 -> rank 1.
    np.testing.assert_array_equal(
        retrieval.image_to_text_ranks(SCORES, CAPTION_IMAGE), [1, 1])

  def test_text_to_image_ranks(self):
    np.testing.assert_array_equal(
        retrieval.text_to_image_ranks(SCORES, CAPTION_IMAGE), [0, 1, 1, 0])

  def test_evaluate_summaries(self):
    got = retrieval.evaluate(SCORES, CAPTION_IMAGE)
    self.assertEqual(got['i2t_r1'], 0.0)
    self.assertEqual(got['i2t_r5'], 100.0)
    self.assertEqual(got['i2t_medr'], 2.0)
    self.assertEqual(got['i2t_meanr'], 2.0)
    self.assertEqual(got['t2i_r1'], 50.0)
    self.assertEqual(got['t2i_medr'], 1.0)  # floor(0.5) + 1
    self.assertEqual(got['t2i_meanr'], 1.5)
    self.assertEqual(got['rsum'], 0 + 100 + 100 + 50 + 100 + 100)

  def test_constant_scores_rank_last(self):
    got = retrieval.evaluate(np.zeros((3, 6)), np.repeat(np.arange(3), 2))
    self.assertEqual(got['i2t_r1'], 0.0)
    self.assertEqual(got['t2i_medr'], 3.0)

  def test_folds_average_independent_blocks(self):
    # 10 images, 2 captions each; perfect inside every fold of 2 images
    # except fold 0, where image 1 scores its captions below image 0's.
    scores = np.eye(10).repeat(2, axis=1)
    scores[1, 0:2] = 2.0
    caption_image = np.repeat(np.arange(10), 2)
    got = retrieval.evaluate_folds(scores, caption_image, num_folds=5)
    # Fold 0: i2t ranks [0, 2] -> r1 50; folds 1-4: r1 100. Mean 90.
    self.assertAlmostEqual(got['i2t_r1'], 90.0)
    # Fold 0: captions 0, 1 rank image 0 at 1 (image 1 scores 2.0), r1 0 for
    # them, 100 for captions 2, 3 -> 50; mean with four 100s is 90.
    self.assertAlmostEqual(got['t2i_r1'], 90.0)

  def test_folds_must_divide(self):
    with self.assertRaisesRegex(ValueError, 'equal folds'):
      retrieval.evaluate_folds(np.zeros((7, 7)), np.arange(7), num_folds=5)

  def test_class_precision_recall_at_k(self):
    scores = np.array([[0.9, 0.1, 0.8, 0.7],
                       [0.1, 0.2, 0.3, 0.3]])
    got = retrieval.class_precision_recall_at_k(
        scores, np.array(['a', 'b']), np.array(['a', 'a', 'b', 'c']), k=2)
    self.assertEqual(got['a'], (0.5, 0.5))
    # Tie between gallery items 2 and 3 goes to the lower index (class b).
    self.assertEqual(got['b'], (0.5, 1.0))


class PerplexityTest(absltest.TestCase):

  def test_sentence_and_corpus_perplexity(self):
    sums = jnp.array([2 * math.log(0.5), math.log(0.25)])
    counts = jnp.array([2, 1])
    np.testing.assert_allclose(perplexity.sentence_perplexity(sums, counts),
                               [2.0, 4.0], rtol=1e-6)
    self.assertAlmostEqual(float(perplexity.corpus_perplexity(sums, counts)),
                           2 ** (4 / 3), places=5)

  def test_uniform_model_has_vocabulary_size_perplexity(self):
    logits = jnp.zeros((2, 3, 4))
    targets = jnp.array([[1, 2, 0], [3, 0, 0]])
    mask = jnp.array([[1, 1, 0], [1, 0, 0]])
    sums, counts = perplexity.token_log_probs(logits, targets, mask)
    np.testing.assert_allclose(counts, [2.0, 1.0])
    self.assertAlmostEqual(float(perplexity.corpus_perplexity(sums, counts)),
                           4.0, places=5)


if __name__ == '__main__':
  absltest.main()
