"""Tests for mixed precision (model.dtype) and the padding-free output layer."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from capjax import losses
from capjax.benchmarks import bench_model
from capjax.benchmarks import dtypes
from capjax.benchmarks import timing
from capjax.models import captioning
from capjax.models import cells
from capjax.models import encoders
from capjax.models import precision

BF16 = jnp.bfloat16
BATCH, TIME, IN, HIDDEN = 4, 6, 8, 16
# Captioners, with the cell each is tested with (both cells are covered).
DECODERS = ('lstm', 'merge/gru', 'soft_attention/lstm')


def _relative_error(got, want) -> float:
  """max |got - want| / max |want| over a tree."""
  num = max(float(jnp.max(jnp.abs(a - b)))
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)))
  den = max(float(jnp.max(jnp.abs(b))) for b in jax.tree.leaves(want))
  return num / den


def _round(x):
  """x rounded to bfloat16 and back."""
  return x.astype(BF16).astype(jnp.float32)


def _size(decoder: str, **kwargs) -> bench_model.ModelSize:
  return bench_model.ModelSize(
      decoder=decoder, batch=6, max_len=7, vocab=40, hidden=HIDDEN,
      embed=12, feature_dim=10,
      grid_cells=5 if decoder.startswith('soft') else 0, **kwargs)


class _Models:
  """One small captioner per decoder and dtype, built once for all tests."""

  def __init__(self):
    self.params, self.models, self.batches = {}, {}, {}
    for decoder in DECODERS:
      batch = bench_model.batch(_size(decoder))
      tokens = jnp.asarray(batch['tokens'])
      inputs, targets = tokens[:, :-1], tokens[:, 1:]
      self.batches[decoder] = (batch['image'], inputs, targets,
                               (targets != 0).astype(jnp.float32))
      for dtype in ('float32', 'bfloat16'):
        size = _size(decoder, dtype=dtype)
        model = captioning.create(bench_model.config(size), size.vocab)
        self.models[decoder, dtype] = model
      self.params[decoder] = model.init(
          jax.random.key(0), batch['image'][:1], inputs[:1])


_MODELS = None


def _models() -> _Models:
  global _MODELS
  if _MODELS is None:
    _MODELS = _Models()
  return _MODELS


class MatmulTest(absltest.TestCase):

  def test_bfloat16_matmul_is_the_product_of_rounded_inputs(self):
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (2, 3, 32))
    w = jax.random.normal(keys[1], (32, 24))
    g = jax.random.normal(keys[2], (2, 3, 24))
    y, vjp = jax.vjp(lambda x, w: precision.matmul(x, w, BF16), x, w)
    self.assertEqual(y.dtype, jnp.float32)
    np.testing.assert_allclose(y, _round(x) @ _round(w), rtol=1e-5,
                               atol=1e-5)
    # The backward pass rounds the cotangent too: both gradient matmuls run
    # in bfloat16 (accumulating in float32).
    dx, dw = vjp(g)
    self.assertEqual((dx.dtype, dw.dtype), (jnp.float32, jnp.float32))
    np.testing.assert_allclose(dx, _round(g) @ _round(w).T, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(
        dw, jnp.einsum('bti,bto->io', _round(x), _round(g)), rtol=1e-5,
        atol=1e-4)

  def test_float32_matmul_is_the_plain_product(self):
    x = jax.random.normal(jax.random.key(0), (5, 7))
    w = jax.random.normal(jax.random.key(1), (7, 3))
    np.testing.assert_array_equal(precision.matmul(x, w), x @ w)
    self.assertIs(precision.dot_general(jnp.float32), jax.lax.dot_general)

  def test_unknown_dtype_names_the_config_key(self):
    with self.assertRaisesRegex(ValueError, 'model.dtype'):
      precision.compute_dtype('float16')
    config = bench_model.config(_size('lstm'))
    config.model.dtype = 'fp8'
    with self.assertRaisesRegex(ValueError, "model.dtype 'fp8'"):
      captioning.create(config, 40)


class _Sequence(cells.nn.Module):
  kind: str
  fused: bool
  dtype: str

  @cells.nn.compact
  def __call__(self, x, c0, h0):
    cell = cells.create(self.kind, HIDDEN, fused=self.fused, dtype=self.dtype,
                        name='cell')
    return cell.scan(cell.carry_from_hidden(c0, h0), cell.project(x))


def _plain_bf16_recurrence(kind, params, x, c0, h0):
  """The cell written plainly: bfloat16 matmul inputs, autodiff for grads."""
  mm = lambda a, w: jnp.matmul(a.astype(BF16), w.astype(BF16),
                               preferred_element_type=jnp.float32)
  p = params['params']['cell']
  x_proj = mm(x, p['input']['kernel']) + p['input']['bias']
  w_hh = p['recurrent']

  def lstm(carry, xp):
    c, h = carry
    i, f, g, o = jnp.split(xp + mm(h, w_hh), 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h

  def gru(h, xp):
    xr, xz, xn = jnp.split(xp, 3, axis=-1)
    hr, hz, hn = jnp.split(mm(h, w_hh), 3, axis=-1)
    r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * (hn + p['recurrent_bias']))
    h = (1.0 - z) * n + z * h
    return h, h

  carry = (c0, h0) if kind == 'lstm' else h0
  carry, hs = jax.lax.scan(lstm if kind == 'lstm' else gru, carry,
                           jnp.swapaxes(x_proj, 0, 1))
  return carry, jnp.swapaxes(hs, 0, 1)


class CellPrecisionTest(parameterized.TestCase):

  @parameterized.parameters('lstm', 'gru')
  def test_fused_bfloat16_gradients_match_plain_autodiff(self, kind):
    keys = jax.random.split(jax.random.key(0), 4)
    x = jax.random.normal(keys[0], (BATCH, TIME, IN))
    c0 = jax.random.normal(keys[1], (BATCH, HIDDEN))
    h0 = jax.random.normal(keys[2], (BATCH, HIDDEN))
    weights = jax.random.normal(keys[3], (BATCH, TIME, HIDDEN))
    fused = _Sequence(kind, fused=True, dtype='bfloat16')
    params = fused.init(jax.random.key(1), x, c0, h0)

    def loss(run, params, x, h0):
      carry, hs = run(params, x, c0, h0)
      final = sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree.leaves(carry))
      return jnp.sum(hs * weights) + final

    grad = jax.jit(jax.grad(loss, argnums=(1, 2, 3)), static_argnums=0)
    got = grad(fused.apply, params, x, h0)
    want = grad(functools.partial(_plain_bf16_recurrence, kind), params, x,
                h0)
    exact = grad(_Sequence(kind, fused=True, dtype='float32').apply, params,
                 x, h0)
    # Within bfloat16 rounding of the plain bfloat16 model's gradients...
    self.assertLess(_relative_error(got, want), 2e-2)
    # ... which themselves are a rounding away from float32's, but not equal
    # to them: the matmuls did run in bfloat16.
    self.assertLess(_relative_error(want, exact), 2e-2)
    self.assertGreater(_relative_error(got, exact), 1e-5)
    # The unfused (nn.scan + autodiff) cell agrees too.
    unfused = grad(_Sequence(kind, fused=False, dtype='bfloat16').apply,
                   params, x, h0)
    self.assertLess(_relative_error(unfused, want), 2e-2)


class CaptionerPrecisionTest(parameterized.TestCase):

  @parameterized.parameters(*DECODERS)
  def test_bfloat16_logits_agree_with_float32(self, decoder):
    models = _models()
    images, inputs, _, _ = models.batches[decoder]
    params = models.params[decoder]
    logits = {
        dtype: jax.jit(functools.partial(
            models.models[decoder, dtype].logits, train=False))(
                params, images, inputs)[0]
        for dtype in ('float32', 'bfloat16')
    }
    self.assertEqual(logits['bfloat16'].dtype, jnp.float32)
    # bfloat16 keeps 8 bits of mantissa: a relative error of 2^-8 per
    # rounding, a few roundings deep.
    error = _relative_error(logits['bfloat16'], logits['float32'])
    self.assertLess(error, 3e-2)
    self.assertGreater(error, 1e-5)  # it did compute in bfloat16

  @parameterized.parameters(*DECODERS)
  def test_bfloat16_decoding_steps_agree_with_float32(self, decoder):
    models = _models()
    images = models.batches[decoder][0]
    params = models.params[decoder]
    tokens = jnp.full((images.shape[0], 3), bench_model.BOS_ID, jnp.int32)
    out = {}
    for dtype in ('float32', 'bfloat16'):

      def first_step(params, images, model=models.models[decoder, dtype]):
        step_fn, carry = model.decoder_fns(params, images)
        return step_fn(tokens, jax.tree.map(
            lambda x: jnp.repeat(x[:, None], 3, axis=1), carry))[0]

      out[dtype] = jax.jit(first_step)(params, images)
    self.assertEqual(out['bfloat16'].dtype, jnp.float32)
    error = _relative_error(out['bfloat16'], out['float32'])
    self.assertLess(error, 3e-2)
    self.assertGreater(error, 1e-5)

  def test_parameters_and_gradients_stay_float32(self):
    models = _models()
    images, inputs, targets, weights = models.batches['lstm']
    model = models.models['lstm', 'bfloat16']
    grads = jax.jit(jax.grad(lambda p: model.nll_sums(
        p, images, inputs, targets, weights, train=False)[0]))(
            models.params['lstm'])
    for leaf in jax.tree.leaves((models.params['lstm'], grads)):
      self.assertEqual(leaf.dtype, jnp.float32)

  def test_small_cnn_in_bfloat16_agrees_with_float32(self):
    config = bench_model.config(_size('lstm')).model.encoder
    config.name = 'small_cnn'
    config.channels, config.strides = (8, 16), (2, 2)
    config.global_dim = 16
    images = jax.random.randint(jax.random.key(0), (2, 16, 16, 3), 0, 256)
    f32 = encoders.create(config)
    bf16 = encoders.create(config, 'bfloat16')
    params = f32.init(jax.random.key(1), images)
    got = jax.jit(bf16.apply)(params, images)
    want = jax.jit(f32.apply)(params, images)
    self.assertEqual(got[0].dtype, jnp.float32)
    self.assertLess(_relative_error(got, want), 3e-2)
    self.assertGreater(_relative_error(got, want), 1e-5)


class PaddingFreeTest(parameterized.TestCase):

  def _sums(self, decoder, dtype, capacity, batch=None):
    models = _models()
    images, inputs, targets, weights = batch or models.batches[decoder]
    model = models.models[decoder, dtype]
    model = captioning.Captioner(model.encoder, model.decoder,
                                 output_capacity=capacity)
    fn = jax.jit(jax.value_and_grad(
        lambda p: model.nll_sums(p, images, inputs, targets, weights,
                                 train=False)[:2], has_aux=True))
    return fn(models.params[decoder])

  @parameterized.parameters(*[(d, 'float32') for d in DECODERS],
                            ('lstm', 'bfloat16'))
  def test_padding_free_loss_equals_padded(self, decoder, dtype):
    (padded, count), padded_grads = self._sums(decoder, dtype, 0.0)
    weights = _models().batches[decoder][3]
    real = int(weights.sum())
    capacity = losses.output_capacity(weights.size, 0.85)
    self.assertLess(real, capacity)  # the padding-free path is the one run
    self.assertLess(capacity, weights.size)
    (free, free_count), free_grads = self._sums(decoder, dtype, 0.85)
    self.assertEqual(float(count), real)
    self.assertEqual(float(free_count), real)
    np.testing.assert_allclose(free, padded, rtol=1e-5)
    self.assertLess(_relative_error(free_grads, padded_grads), 1e-5)

  def test_overflowing_batch_takes_the_padded_path(self):
    # A capacity below the batch's real tokens never drops any: same loss.
    (padded, _), grads = self._sums('merge/gru', 'float32', 0.0)
    weights = _models().batches['merge/gru'][3]
    self.assertGreater(int(weights.sum()),
                       losses.output_capacity(weights.size, 0.3))
    (small, _), small_grads = self._sums('merge/gru', 'float32', 0.3)
    np.testing.assert_allclose(small, padded, rtol=1e-6)
    self.assertLess(_relative_error(small_grads, grads), 1e-6)

  def test_captions_per_image_and_fractional_weights(self):
    # Two captions per image, a masked-out caption and non-binary weights.
    models = _models()
    images, inputs, targets, weights = models.batches['soft_attention/lstm']
    weights = weights.at[1].set(0.0).at[2].multiply(0.5)
    model = models.models['soft_attention/lstm', 'float32']
    params = models.params['soft_attention/lstm']
    out = {}
    for capacity in (0.0, 0.7):
      m = captioning.Captioner(model.encoder, model.decoder,
                               output_capacity=capacity)
      out[capacity] = m.nll_sums(params, images[:3], inputs, targets,
                                 weights, train=False, captions_per_image=2)
    np.testing.assert_allclose(out[0.7][0], out[0.0][0], rtol=1e-5)
    np.testing.assert_allclose(out[0.7][2]['attention'],
                               out[0.0][2]['attention'])

  def test_capacity_rounding(self):
    self.assertEqual(losses.output_capacity(1280, 0.0), 1280)
    self.assertEqual(losses.output_capacity(1280, 0.85), 1088)
    self.assertEqual(losses.output_capacity(100, 0.5), 56)
    self.assertEqual(losses.output_capacity(10, 0.99), 10)
    with self.assertRaisesRegex(ValueError, 'model.output_capacity'):
      losses.output_capacity(10, -0.5)

  def test_real_positions_in_order_with_their_weights(self):
    weights = jnp.array([[1.0, 1.0, 0.0], [0.5, 0.0, 0.0]])
    index, row_weights, fits = losses.real_positions(weights, 4)
    np.testing.assert_array_equal(index, [[0, 1, 3, 0]])
    np.testing.assert_array_equal(row_weights, [[1.0, 1.0, 0.5, 0.0]])
    self.assertTrue(bool(fits))
    self.assertFalse(bool(losses.real_positions(weights, 2)[2]))
    # Two groups (one example each) pick their own positions, 2 rows each.
    index, row_weights, fits = losses.real_positions(weights, 4, groups=2)
    np.testing.assert_array_equal(index, [[0, 1], [0, 0]])
    np.testing.assert_array_equal(row_weights, [[1.0, 1.0], [0.5, 0.0]])
    self.assertTrue(bool(fits))
    self.assertFalse(bool(losses.real_positions(
        weights.at[1, 1:].set(1.0), 4, groups=2)[2]))


class BenchmarkDtypeTest(absltest.TestCase):

  def test_alternating_timer_takes_turns(self):
    calls = []
    fns = {'a': lambda: calls.append('a') or 1,
           'b': lambda: calls.append('b') or 2}
    timed = timing.time_alternating(fns, repeats=3, warmup=2)
    # Two warm-up rounds, then three timed ones, one call of each per round.
    self.assertEqual(calls, ['a', 'b'] * 5)
    self.assertEqual([timed[k][1] for k in 'ab'], [1, 2])
    self.assertEqual(timed['a'][0].repeats, 3)

  def test_dtype_flag(self):
    self.assertEqual(dtypes.from_config({}), ('float32',))
    self.assertEqual(dtypes.from_config({'dtype': ['bfloat16', 'float32']}),
                     ('bfloat16', 'float32'))
    with self.assertRaisesRegex(ValueError, r"unknown \['float16'\]"):
      dtypes.from_config({'dtype': ['float16']})
    config = dtypes.set_dtype(bench_model.config(_size('lstm')), 'bfloat16')
    self.assertEqual(config.model.dtype, 'bfloat16')


if __name__ == '__main__':
  absltest.main()
