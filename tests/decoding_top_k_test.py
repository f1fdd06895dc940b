"""The chunked top-k over beams and vocabulary equals a flat lax.top_k."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
from jax import lax
from jax import numpy as jnp
import numpy as np

from capjax.decoding import top_k as decoding_top_k


class TopKTest(parameterized.TestCase):
  @parameterized.named_parameters(
    ('chunked_with_rest', 3, 1009, 3, None, False),
    ('chunked_divisor', 3, 1000, 3, None, False),
    ('chunked_excluding', 3, 1009, 3, 130, False),
    ('chunked_given_maxima', 3, 1000, 3, 2, True),
    ('direct', 2, 200, 2, 2, False),
  )
  def test_top_k_candidates_equals_flat_top_k(
    self, beam, vocab, k, exclude, given_maxima
  ):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4, beam, vocab)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[0, :, :] = -np.inf
    scores[0, 0, vocab - 1] = 0.5  # the best sits in the last chunk
    if exclude is not None:
      scores[1, :, exclude] = 9.0  # the best of all, but excluded
    offset = rng.normal(size=(4, beam)).astype(np.float32)
    offset[2, 0] = -np.inf
    maxima = None
    if given_maxima:
      maxima = decoding_top_k.chunk_maxima(jnp.asarray(scores))
    values, beams, tokens = decoding_top_k.top_k_candidates(
      jnp.asarray(scores),
      jnp.asarray(offset),
      k,
      exclude=exclude,
      maxima=maxima,
    )
    if exclude is not None:
      scores[:, :, exclude] = -np.inf
    flat = jnp.asarray(offset[..., None] + scores).reshape(4, -1)
    expected_values, expected_flat = lax.top_k(flat, k)
    np.testing.assert_array_equal(values, expected_values)
    finite = np.isfinite(np.asarray(expected_values))
    np.testing.assert_array_equal(
      np.where(finite, beams * vocab + tokens, -1),
      np.where(finite, expected_flat, -1),
    )

  def test_chunk_size_divides_the_vocabulary_when_it_can(self):
    self.assertEqual(decoding_top_k.chunk_size(5000), 125)
    self.assertEqual(decoding_top_k.chunk_size(1024), 128)
    self.assertEqual(decoding_top_k.chunk_size(1009), 128)  # prime

  def test_log_normalizer_shares_the_chunk_pass(self):
    logits = jax.random.normal(jax.random.key(0), (2, 3, 701)) * 4.0
    lse, maxima = decoding_top_k.log_normalizer(logits, True)
    np.testing.assert_allclose(
      lse, jax.nn.logsumexp(logits, axis=-1), rtol=1e-6
    )
    np.testing.assert_array_equal(maxima, decoding_top_k.chunk_maxima(logits))
    self.assertEqual(maxima.shape, (2, 3, 6))


if __name__ == '__main__':
  absltest.main()
