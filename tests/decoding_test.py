"""The decoder chosen by name, and the step-function contract's helpers."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
from jax import numpy as jnp
import numpy as np

from capjax import decoding
from tests import decoding_toys


def _shapes(jaxpr) -> set[tuple[int, ...]]:
  """Shapes of every value used or made in a jaxpr and its sub-jaxprs."""
  shapes = set()
  for eqn in jaxpr.eqns:
    for var in list(eqn.invars) + list(eqn.outvars):
      shapes.add(tuple(getattr(var.aval, 'shape', ())))
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        sub = getattr(sub, 'jaxpr', sub)
        if hasattr(sub, 'eqns'):
          shapes |= _shapes(sub)
  return shapes


class DecodeTest(parameterized.TestCase):
  @parameterized.named_parameters(
    ('greedy', 'greedy', {}, decoding.greedy),
    ('beam', 'beam', dict(beam_size=3, num_return=2), decoding.beam_search),
    (
      'diverse_beam',
      'diverse_beam',
      dict(beam_size=4, num_groups=2, diversity=0.5),
      decoding.diverse_beam_search,
    ),
  )
  def test_method_runs_that_decoder(self, method, settings, decoder):
    model = decoding_toys.rnn_model(0, 2, 7)
    settings = dict(settings, max_len=5, length_penalty=0.6)
    seqs, scores = decoding.decode(
      model.step_fn, model.init_carry, method=method, **settings
    )
    expected_seqs, expected_scores = decoder(
      model.step_fn, model.init_carry, **settings
    )
    np.testing.assert_array_equal(seqs, expected_seqs)
    np.testing.assert_array_equal(scores, expected_scores)

  def test_sample_method_takes_the_key(self):
    model = decoding_toys.rnn_model(0, 2, 7)
    rng = jax.random.key(3)
    seqs, scores = decoding.decode(
      model.step_fn,
      model.init_carry,
      method='sample',
      rng=rng,
      max_len=5,
      num_samples=4,
      top_k=3,
    )
    expected_seqs, expected_scores = decoding.sample(
      model.step_fn, model.init_carry, rng, max_len=5, num_samples=4, top_k=3
    )
    self.assertEqual(seqs.shape, (2, 4, 5))
    self.assertEqual(scores.shape, (2, 4))
    np.testing.assert_array_equal(seqs, expected_seqs)
    np.testing.assert_array_equal(scores, expected_scores)

  def test_constraints_mapping_from_a_config(self):
    model = decoding_toys.table_model(1, 2, 6, 7)
    rules = {'min_len': 3, 'banned_ids': [0, 1]}
    seqs, _ = decoding.decode(
      model.step_fn,
      model.init_carry,
      method='beam',
      beam_size=2,
      max_len=6,
      constraints=rules,
    )
    expected, _ = decoding.beam_search(
      model.step_fn,
      model.init_carry,
      beam_size=2,
      max_len=6,
      constraints=decoding.Constraints(min_len=3, banned_ids=(0, 1)),
    )
    np.testing.assert_array_equal(seqs, expected)

  def test_misuse_is_named(self):
    model = decoding_toys.table_model(0, 1, 3, 5)
    args = (model.step_fn, model.init_carry)
    with self.assertRaisesRegex(ValueError, "one of .*'beam'.*got 'topk'"):
      decoding.decode(*args, method='topk', max_len=3)
    with self.assertRaisesRegex(ValueError, 'rng'):
      decoding.decode(*args, method='sample', max_len=3)
    with self.assertRaisesRegex(ValueError, 'rng'):
      decoding.decode(*args, method='greedy', rng=jax.random.key(0), max_len=3)
    with self.assertRaisesRegex(TypeError, "method='greedy'.*beam_size"):
      decoding.decode(*args, method='greedy', beam_size=3, max_len=3)


class ContractTest(absltest.TestCase):
  def test_length_normalizer_known_values(self):
    lengths = jnp.array([1.0, 4.0, 10.0])
    np.testing.assert_allclose(
      decoding.length_normalizer(lengths, 0.6, 'gnmt'),
      [1.0, 1.5**0.6, 2.5**0.6],
      rtol=1e-6,
    )
    np.testing.assert_allclose(
      decoding.length_normalizer(lengths, 1.0, 'power'), lengths
    )
    np.testing.assert_array_equal(
      decoding.length_normalizer(lengths, 0.0, 'gnmt'), 1.0
    )

  def test_context_is_broadcast_not_copied_per_beam(self):
    # batch 2, beam 3, context [2, L=5, D=7]: no [2, 3, 5, 7] array exists.
    model = decoding_toys.rnn_model(0, 2, 11, context_len=5, context_dim=7)
    jaxpr = jax.make_jaxpr(
      lambda carry: decoding.beam_search(
        model.step_fn, carry, beam_size=3, max_len=4
      )
    )(model.init_carry)
    shapes = _shapes(jaxpr.jaxpr)
    self.assertIn((2, 5, 7), shapes)  # the context itself
    self.assertIn((2, 3, 5), shapes)  # attention weights [batch, beam, L]
    self.assertNotIn((2, 3, 5, 7), shapes)
    self.assertNotIn((6, 5, 7), shapes)

  def test_batch_sharded_over_eight_devices_gives_the_same_captions(self):
    devices = np.array(jax.devices())
    self.assertLen(devices, 8)
    mesh = jax.sharding.Mesh(devices, ('data',))
    by_row = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec('data')
    )
    model = decoding_toys.rnn_model(2, 8, 9)
    params, context = model.step_fn.args

    @jax.jit
    def caption(params, context, h):
      step_fn = jax.tree_util.Partial(model.step_fn.func, params, context)
      return decoding.beam_search(step_fn, {'h': h}, beam_size=3, max_len=5)

    seqs, scores = caption(
      params,
      jax.device_put(context, by_row),
      jax.device_put(model.init_carry['h'], by_row),
    )
    expected_seqs, expected_scores = decoding.beam_search(
      model.step_fn, model.init_carry, beam_size=3, max_len=5
    )
    self.assertLen(seqs.sharding.device_set, 8)
    np.testing.assert_array_equal(seqs, expected_seqs)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)

  def test_bad_init_carry_is_named(self):
    model = decoding_toys.table_model(0, 2, 3, 5)
    with self.assertRaisesRegex(ValueError, 'same leading batch dim'):
      decoding.greedy(
        model.step_fn,
        {'position': jnp.zeros((2,), jnp.int32), 'h': jnp.zeros((3, 4))},
        max_len=3,
      )


if __name__ == '__main__':
  absltest.main()
