"""The train step computes the global gradient norm once, for log and clip.

`optimizers.clip_by_global_norm` given the step's norm clips exactly as
`optax.clip_by_global_norm`; the step's jaxpr holds one global norm; the
logged norm and the update are those of the plain optax chain, a frozen
(`freeze`) leaf included.
"""

import functools
import types

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from capjax import config_base
from capjax import optimizers
from capjax import train


def _params():
  rng = np.random.default_rng(0)
  return {'embed': {'table': jnp.asarray(rng.normal(size=(6, 3)),
                                         jnp.float32)},
          'dense': {'kernel': jnp.asarray(rng.normal(size=(3, 4)),
                                          jnp.float32),
                    'bias': jnp.zeros([4], jnp.float32)}}


def _task(frozen: bool):
  """A toy task: embedding lookup, a dense layer, squared error sums."""

  def totals(model, params, batch, *, train, rng):
    del model, train, rng
    x = params['embed']['table'][batch['ids']]
    y = x @ params['dense']['kernel'] + params['dense']['bias']
    return {'sse': jnp.sum((y - batch['target']) ** 2),
            'count': jnp.asarray(batch['ids'].shape[0], jnp.float32)}

  task = types.SimpleNamespace(
      totals=totals,
      loss=lambda t, g, config: t['sse'] / g['count'],
      summarize=lambda t, config: {'loss': t['sse'] / t['count']})
  if frozen:
    task.frozen = lambda config, model: lambda path: path[0] == 'embed'
  return task


def _batch():
  rng = np.random.default_rng(1)
  return {'ids': jnp.asarray(rng.integers(0, 6, (5,)), jnp.int32),
          'target': jnp.asarray(rng.normal(size=(5, 4)) * 30, jnp.float32)}


def _equations(jaxpr):
  for eqn in jaxpr.eqns:
    yield eqn
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        inner = getattr(sub, 'jaxpr', sub)
        if hasattr(inner, 'eqns'):
          yield from _equations(inner)


class GradNormTest(parameterized.TestCase):

  @parameterized.parameters(0.5, 1e4)  # clipped, and left alone
  def test_clip_with_a_given_norm_is_optax_clip_bit_for_bit(self, max_norm):
    grads = jax.tree.map(lambda x: 3.0 * x, _params())
    clip = optimizers.clip_by_global_norm(max_norm)
    state = clip.init(grads)

    @jax.jit
    def clipped(grads):
      want, _ = optax.clip_by_global_norm(max_norm).update(grads, None)
      given, _ = clip.update(grads, state,
                             grad_norm=optax.tree.norm(grads))
      computed, _ = clip.update(grads, state)
      return want, given, computed

    want, given, computed = clipped(grads)
    for a, b, c in zip(jax.tree.leaves(want), jax.tree.leaves(given),
                       jax.tree.leaves(computed)):
      np.testing.assert_array_equal(a, b)
      np.testing.assert_array_equal(a, c)
    if max_norm < 1:
      self.assertAlmostEqual(float(optax.tree.norm(given)), max_norm,
                             places=5)

  def _step(self, tx, frozen):
    config = config_base.base_config()
    return jax.jit(functools.partial(
        train.train_step, task=_task(frozen), model=None, tx=tx,
        config=config))

  @parameterized.parameters(False, True)
  def test_one_norm_feeds_the_log_and_the_clip_as_optax_did(self, frozen):
    optimizer = ml_collections.ConfigDict(config_base.base_config().optimizer)
    optimizer.name, optimizer.grad_clip_norm = 'sgd', 1.0
    optimizer.schedule, optimizer.warmup_steps = 'constant', 0
    tx = optimizers.create(optimizer, 10)
    # What main built: optax's clip, which computes its own norm.
    plain = optax.chain(optax.clip_by_global_norm(1.0),
                        optax.sgd(optimizer.learning_rate,
                                  momentum=optimizer.momentum or None))
    is_frozen = _task(frozen).frozen(None, None) if frozen else None
    if frozen:
      tx, plain = (optimizers.freeze(t, is_frozen) for t in (tx, plain))
    params = _params()
    state = train.TrainState(step=jnp.zeros([], jnp.int32), params=params,
                             opt_state=tx.init(params))
    rng = jax.random.key(0)
    step = self._step(tx, frozen)
    jaxpr = jax.make_jaxpr(step)(state, _batch(), rng)
    norms = [e for e in _equations(jaxpr.jaxpr)
             if e.primitive.name == 'sqrt' and not e.outvars[0].aval.shape]
    self.assertLen(norms, 1)  # the global norm, computed once
    new_state, metrics = step(state, _batch(), rng)

    # The same step written plainly (jitted too, so that both round
    # alike): every gradient, optax's clip computing its own norm (over
    # the trained leaves, inside `freeze`), the trained norm logged apart.
    task = _task(frozen)

    @jax.jit
    def plain_step(params, batch):
      def loss(p):
        t = task.totals(None, p, batch, train=True, rng=None)
        return task.loss(t, t, None)
      grads = jax.grad(loss)(params)
      trained = grads
      if frozen:
        trained = {k: v for k, v in grads.items() if k != 'embed'}
      updates, _ = plain.update(grads, plain.init(params), params)
      return optax.apply_updates(params, updates), optax.tree.norm(trained)

    want, norm = plain_step(params, _batch())
    self.assertEqual(float(metrics['grad_norm']), float(norm))
    self.assertGreater(float(norm), 1.0)  # it clips
    for a, b in zip(jax.tree.leaves(want),
                    jax.tree.leaves(new_state.params)):
      np.testing.assert_array_equal(a, b)

if __name__ == '__main__':
  absltest.main()
