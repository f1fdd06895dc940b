"""Tests for capjax.models.cells: fused recurrences against nn.scan."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
from jax import test_util as jtu
import numpy as np

from capjax.models import cells

BATCH, TIME, IN, HIDDEN = 3, 5, 4, 6


class _SequenceModel(cells.nn.Module):
  """Projects inputs and runs a cell over them, as a captioner does."""

  kind: str
  fused: bool
  unroll: int = 1

  @cells.nn.compact
  def __call__(self, x, c0, h0):
    cell = cells.create(self.kind, HIDDEN, fused=self.fused, unroll=self.unroll)
    carry, hs = cell.scan(cell.carry_from_hidden(c0, h0), cell.project(x))
    return carry, hs


def _inputs():
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (BATCH, TIME, IN))
  c0 = jax.random.normal(keys[1], (BATCH, HIDDEN))
  h0 = jax.random.normal(keys[2], (BATCH, HIDDEN))
  return x, c0, h0


class FusedRecurrenceTest(parameterized.TestCase):

  @parameterized.product(kind=['lstm', 'gru', 'relu'], unroll=[1, 2])
  def test_fused_matches_nn_scan_values_and_gradients(self, kind, unroll):
    x, c0, h0 = _inputs()
    fused = _SequenceModel(kind, fused=True, unroll=unroll)
    plain = _SequenceModel(kind, fused=False)
    params = fused.init(jax.random.key(1), x, c0, h0)
    # Same parameter tree: a checkpoint serves both paths.
    self.assertEqual(
        jax.tree.structure(params),
        jax.tree.structure(plain.init(jax.random.key(1), x, c0, h0)),
    )
    weights = jax.random.normal(jax.random.key(2), (BATCH, TIME, HIDDEN))

    def loss(model, params, x, c0, h0):
      carry, hs = model.apply(params, x, c0, h0)
      final = sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree.leaves(carry))
      return jnp.sum(hs * weights) + final

    value_f, grads_f = jax.value_and_grad(
        lambda *a: loss(fused, *a), argnums=(0, 1, 2, 3))(params, x, c0, h0)
    value_p, grads_p = jax.value_and_grad(
        lambda *a: loss(plain, *a), argnums=(0, 1, 2, 3))(params, x, c0, h0)
    np.testing.assert_allclose(value_f, value_p, rtol=1e-5)
    for g_f, g_p in zip(jax.tree.leaves(grads_f), jax.tree.leaves(grads_p)):
      np.testing.assert_allclose(g_f, g_p, rtol=1e-4, atol=1e-5)

  @parameterized.parameters('lstm', 'gru', 'relu')
  def test_fused_gradient_matches_finite_differences(self, kind):
    x, c0, h0 = _inputs()
    model = _SequenceModel(kind, fused=True)
    with jax.enable_x64(True):
      x, c0, h0 = (a.astype(jnp.float64) for a in (x, c0, h0))
      params = jax.tree.map(
          lambda p: p.astype(jnp.float64),
          model.init(jax.random.key(1), x, c0, h0),
      )
      f = lambda p, x, c0, h0: jnp.sum(jnp.cos(model.apply(p, x, c0, h0)[1]))
      jtu.check_grads(
          f, (params, x, c0, h0), order=1, modes=['rev'], atol=1e-6, rtol=1e-6
      )

  @parameterized.parameters('lstm', 'gru', 'relu')
  def test_step_by_step_reproduces_scan(self, kind):
    x, c0, h0 = _inputs()
    model = _SequenceModel(kind, fused=True)
    params = model.init(jax.random.key(1), x, c0, h0)
    _, hs = model.apply(params, x, c0, h0)

    cell = cells.create(kind, HIDDEN)
    (cell_params,) = params['params'].values()
    cell_params = {'params': cell_params}
    carry = cell.apply(cell_params, c0, h0, method='carry_from_hidden')
    x_proj = cell.apply(cell_params, x, method='project')
    outputs = []
    for t in range(TIME):
      carry, h = cell.apply(cell_params, carry, x_proj[:, t], method='step')
      outputs.append(h)
    np.testing.assert_allclose(jnp.stack(outputs, 1), hs, rtol=1e-5, atol=1e-6)

  def test_unknown_cell_names_the_config_key(self):
    with self.assertRaisesRegex(ValueError, 'model.cell'):
      cells.create('rnn', 4)


if __name__ == '__main__':
  absltest.main()
