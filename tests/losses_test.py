"""Tests of the losses: the fused NLL and the attention regulariser."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from capjax import losses


class TokenNllTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    keys = jax.random.split(jax.random.key(0), 3)
    self.logits = jax.random.normal(keys[0], (3, 4, 7)) * 3
    self.targets = jax.random.randint(keys[1], (3, 4), 0, 7)
    self.weights = (jax.random.uniform(keys[2], (3, 4)) > 0.3).astype(
        jnp.float32)

  def _reference(self, logits):
    log_probs = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(log_probs, self.targets[..., None], -1)[..., 0]
    return jnp.sum(nll * self.weights)

  def test_value_is_the_negative_log_softmax(self):
    nll_sum, count = losses.cross_entropy(
        self.logits, self.targets, self.weights)
    np.testing.assert_allclose(nll_sum, self._reference(self.logits),
                               rtol=1e-6)
    self.assertEqual(float(count), float(self.weights.sum()))

  def test_gradient_is_softmax_minus_onehot_where_weighted(self):
    grad = jax.grad(lambda l: losses.cross_entropy(
        l, self.targets, self.weights)[0])(self.logits)
    expected = jax.grad(self._reference)(self.logits)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)
    # Padding positions get no gradient at all.
    np.testing.assert_array_equal(grad[self.weights == 0], 0.0)


class DoublyStochasticTest(absltest.TestCase):

  def test_hand_computed_value_counts_real_steps_only(self):
    # One caption, 3 steps (the last is padding), 2 cells.
    alpha = jnp.array([[[0.75, 0.25], [0.5, 0.5], [0.0, 1.0]]])
    weights = jnp.array([[1.0, 1.0, 0.0]])
    # Coverage over real steps: cell 0 = 1.25, cell 1 = 0.75.
    expected = (1 - 1.25) ** 2 + (1 - 0.75) ** 2
    self.assertAlmostEqual(
        float(losses.doubly_stochastic(alpha, weights)), expected, places=6)

  def test_sums_over_the_batch(self):
    alpha = jnp.full((2, 4, 4), 0.25)
    weights = jnp.ones((2, 4))
    self.assertAlmostEqual(
        float(losses.doubly_stochastic(alpha, weights)), 0.0, places=6)
    weights = weights.at[1].set(0.0)  # a padding caption: each cell misses 1
    self.assertAlmostEqual(
        float(losses.doubly_stochastic(alpha, weights)), 4.0, places=6)


if __name__ == '__main__':
  absltest.main()
