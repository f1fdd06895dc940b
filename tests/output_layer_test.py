"""The fused output layer + cross-entropy against the plain Dense + softmax."""

import re

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from capjax import losses
from capjax import parallel
from capjax.benchmarks import bench_model
from capjax.models import captioning
from capjax.models import output_layer
from capjax.models import precision

ROWS, IN, VOCAB = 24, 16, 40


def _relative_error(got, want) -> float:
  """max |got - want| / max |want| over a tree."""
  num = max(float(jnp.max(jnp.abs(a - b)))
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)))
  den = max(float(jnp.max(jnp.abs(b))) for b in jax.tree.leaves(want))
  return num / den


def _plain(x, kernel, bias, targets, weights, dtype=jnp.float32):
  """The unfused path: a Dense layer's logits, then the masked loss."""
  logits = precision.matmul(x, kernel, dtype) + bias
  return losses.cross_entropy(logits, targets, weights)[0]


def _fused(x, kernel, bias, targets, weights, dtype=jnp.float32):
  return jnp.sum(output_layer.nll(x, kernel, bias, targets, dtype) * weights)


class NllTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    keys = jax.random.split(jax.random.key(0), 5)
    cls.args = (
        jax.random.normal(keys[0], (ROWS, IN)),
        jax.random.normal(keys[1], (IN, VOCAB)) * 0.5,
        jax.random.normal(keys[2], (VOCAB,)),
        jax.random.randint(keys[3], (ROWS,), 0, VOCAB),
        (jax.random.uniform(keys[4], (ROWS,)) > 0.3) * 1.0,
    )

  def _value_and_grads(self, fn, dtype):
    return jax.jit(jax.value_and_grad(
        lambda x, w, b: fn(x, w, b, *self.args[3:], dtype), argnums=(0, 1, 2)
    ))(*self.args[:3])

  def test_float32_equals_the_log_softmax_of_a_dense_layer(self):
    x, kernel, bias, targets, weights = self.args
    log_probs = jax.nn.log_softmax(x @ kernel + bias)
    expected = -jnp.take_along_axis(log_probs, targets[:, None], -1)[:, 0]
    np.testing.assert_allclose(
        output_layer.nll(x, kernel, bias, targets), expected, rtol=1e-5)
    fused, fused_grads = self._value_and_grads(_fused, jnp.float32)
    plain, plain_grads = self._value_and_grads(_plain, jnp.float32)
    np.testing.assert_allclose(fused, plain, rtol=1e-6)
    for got, want in zip(fused_grads, plain_grads):  # x, kernel, bias
      self.assertLess(_relative_error(got, want), 1e-5)

  def test_padding_rows_get_no_input_gradient(self):
    dx = self._value_and_grads(_fused, jnp.float32)[1][0]
    np.testing.assert_array_equal(dx[self.args[4] == 0], 0.0)

  def test_bfloat16_equals_the_plain_bfloat16_path(self):
    # Same rounding of the matmul inputs: the loss is the same; the gradients
    # differ only where the bias gradient sums bfloat16 instead of float32.
    fused, fused_grads = self._value_and_grads(_fused, jnp.bfloat16)
    plain, plain_grads = self._value_and_grads(_plain, jnp.bfloat16)
    np.testing.assert_allclose(fused, plain, rtol=1e-6)
    np.testing.assert_allclose(fused_grads[0], plain_grads[0], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(fused_grads[1], plain_grads[1], rtol=1e-5,
                               atol=1e-6)
    self.assertLess(_relative_error(fused_grads[2], plain_grads[2]), 1e-2)
    # And against float32, to a tolerance suited to bfloat16 inputs.
    exact, exact_grads = self._value_and_grads(_plain, jnp.float32)
    np.testing.assert_allclose(fused, exact, rtol=2e-2)
    self.assertLess(_relative_error(fused_grads, exact_grads), 5e-2)


def _size(decoder: str, dtype: str) -> bench_model.ModelSize:
  return bench_model.ModelSize(
      decoder=decoder, batch=4, max_len=6, vocab=VOCAB, hidden=16, embed=12,
      feature_dim=10, grid_cells=5 if decoder.startswith('soft') else 0,
      dtype=dtype)


class CaptionerLossTest(parameterized.TestCase):

  @parameterized.parameters('lstm', 'merge/gru', 'soft_attention/lstm')
  def test_fused_nll_sums_equal_the_loss_of_the_logits(self, decoder):
    size = _size(decoder, 'float32')
    model = captioning.create(bench_model.config(size), size.vocab)
    self.assertTrue(hasattr(model.decoder, 'head_inputs'))
    batch = bench_model.batch(size)
    tokens = jnp.asarray(batch['tokens'])
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    weights = (targets != 0).astype(jnp.float32)
    params = model.init(jax.random.key(0), batch['image'][:1], inputs[:1])

    def fused(p):
      return model.nll_sums(p, batch['image'], inputs, targets, weights,
                            train=False)[0]

    def plain(p):
      logits, _ = model.logits(p, batch['image'], inputs, train=False)
      return losses.cross_entropy(logits, targets, weights)[0]

    got, got_grads = jax.jit(jax.value_and_grad(fused))(params)
    want, want_grads = jax.jit(jax.value_and_grad(plain))(params)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    self.assertLess(_relative_error(got_grads, want_grads), 1e-5)


class ShardedPaddingFreeTest(absltest.TestCase):

  def test_each_device_computes_the_rows_of_its_own_examples(self):
    # The jit train step of the train loop (batch sharded over the 8 test
    # devices, state replicated): the padding-free output layer computes
    # capacity / 8 rows per device, and its loss is the padded one.
    mesh = parallel.make_mesh(0)
    self.assertEqual(mesh.size, 8)
    replicated = parallel.replicated_sharding(mesh)
    losses_of = {}
    for share in (0.0, 0.5):
      size = bench_model.ModelSize(batch=16, max_len=8, vocab=VOCAB,
                                   hidden=8, embed=8, feature_dim=4,
                                   output_capacity=share)
      setup = bench_model.train_setup(size)
      self.assertEqual(setup.model.output_groups, 8)
      tokens = np.asarray(setup.batch['tokens']).copy()
      tokens[:, 5:] = 0  # 4 real targets per caption: 8 per device
      batch = dict(setup.batch, tokens=tokens)
      step = jax.jit(
          setup.step_fn,
          in_shardings=(replicated, parallel.data_sharding(mesh), replicated),
          out_shardings=(replicated, replicated),
      )
      compiled = step.lower(setup.state, batch, setup.rng).compile()
      metrics = compiled(setup.state, batch, setup.rng)[1]
      losses_of[share] = float(metrics['loss'])
    capacity = 8 * losses.output_capacity(16 * 8 // 8, 0.5)
    self.assertEqual(capacity, 64)  # half of the 128 positions, 8 a device
    rows = re.findall(rf'f32\[(\d+),{VOCAB}\]', compiled.as_text())
    self.assertIn('8', rows)  # the padding-free branch: 8 rows a device
    self.assertNotIn('64', rows)  # no device computes every device's rows
    np.testing.assert_allclose(losses_of[0.5], losses_of[0.0], rtol=1e-5)


if __name__ == '__main__':
  absltest.main()
