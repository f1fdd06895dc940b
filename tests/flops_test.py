"""Known-answer tests of the jaxpr FLOP counter and of the benchmark counts."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import jax
from jax import lax
import jax.numpy as jnp

from capjax.benchmarks import bench_model
from capjax.benchmarks import decode
from capjax.benchmarks import flops
from capjax.benchmarks import train_step

PLAIN = (((1,), (0,)), ((), ()))  # [m, k] x [k, n]


def _zeros(*shape):
  return jnp.zeros(shape, jnp.float32)


class DotGeneralFlopsTest(absltest.TestCase):

  def test_plain_matmul_is_2mnk(self):
    # [3, 4] x [4, 5]: 15 outputs of 4 multiply-adds.
    self.assertEqual(flops.dot_general_flops((3, 4), (4, 5), PLAIN), 120)

  def test_batched_matmul_counts_every_batch(self):
    # 6 x ([3, 4] x [4, 5]), batch dims leading, then contraction.
    dims = (((2,), (1,)), ((0,), (0,)))
    self.assertEqual(flops.dot_general_flops((6, 3, 4), (6, 4, 5), dims),
                     2 * 6 * 3 * 5 * 4)

  def test_contraction_over_two_dims(self):
    # [2, 3, 4] x [3, 4, 5] summed over (3, 4): 10 outputs of 12 terms.
    dims = (((1, 2), (0, 1)), ((), ()))
    self.assertEqual(flops.dot_general_flops((2, 3, 4), (3, 4, 5), dims),
                     2 * 2 * 5 * 12)

  def test_batch_and_contraction_dims_in_any_position(self):
    # lhs [k=4, b=6, m=3], rhs [n=5, k=4, b=6].
    dims = (((0,), (1,)), ((1,), (2,)))
    self.assertEqual(flops.dot_general_flops((4, 6, 3), (5, 4, 6), dims),
                     2 * 6 * 3 * 5 * 4)

  def test_empty_contraction_is_zero_flops(self):
    self.assertEqual(flops.dot_general_flops((3, 0), (0, 5), PLAIN), 0)
    dims = (((2,), (1,)), ((0,), (0,)))
    self.assertEqual(flops.dot_general_flops((0, 3, 4), (0, 4, 5), dims), 0)

  def test_traced_einsum_matches_hand_count(self):
    count = flops.matmul_flops(
        lambda a, b: jnp.einsum('bij,bjk->bik', a, b),
        _zeros(6, 3, 4), _zeros(6, 4, 5))
    self.assertEqual(count, 2 * 6 * 3 * 5 * 4)


class MatmulFlopsTest(absltest.TestCase):

  def test_elementwise_work_is_not_counted(self):
    count = flops.matmul_flops(lambda x: jnp.tanh(x) * 2 + x.sum(), _zeros(8))
    self.assertEqual(count, 0)

  def test_gradient_counts_forward_and_weight_gradient(self):
    # d/dw sum(x @ w): forward x @ w, then x^T @ g; x is not differentiated.
    x = _zeros(3, 4)
    count = flops.matmul_flops(jax.grad(lambda w: jnp.sum(x @ w)),
                               _zeros(4, 5))
    self.assertEqual(count, 120 + 120)

  def test_scan_body_is_counted_length_times(self):
    def fn(c, w):
      return lax.scan(lambda c, _: (c @ w, None), c, None, length=5)[0]

    # [2, 3] x [3, 3] = 36 FLOPs per step.
    self.assertEqual(flops.matmul_flops(fn, _zeros(2, 3), _zeros(3, 3)),
                     5 * 36)

  def test_nested_scans_multiply(self):
    def inner(c, w):
      return lax.scan(lambda c, _: (c @ w, None), c, None, length=5)[0]

    def fn(c, w):
      return lax.scan(lambda c, _: (inner(c, w), None), c, None, length=4)[0]

    self.assertEqual(flops.matmul_flops(fn, _zeros(2, 3), _zeros(3, 3)),
                     4 * 5 * 36)

  def test_while_loop_is_counted_while_trips_times(self):
    def fn(c, w):
      return lax.while_loop(lambda s: s[0] < 7,
                            lambda s: (s[0] + 1, s[1] @ w), (0, c))[1]

    count = flops.matmul_flops(fn, _zeros(2, 3), _zeros(3, 3), while_trips=7)
    self.assertEqual(count, 7 * 36)

  def test_while_loop_without_trips_raises(self):
    def fn(c, w):
      return lax.while_loop(lambda s: s[0] < 7,
                            lambda s: (s[0] + 1, s[1] @ w), (0, c))[1]

    with self.assertRaisesRegex(ValueError, 'while_trips'):
      flops.matmul_flops(fn, _zeros(2, 3), _zeros(3, 3))

  def test_cond_counts_its_costliest_branch(self):
    def fn(p, c, w):
      return lax.cond(p, lambda c: c @ w, lambda c: (c @ w) @ w, c)

    count = flops.matmul_flops(fn, True, _zeros(2, 3), _zeros(3, 3))
    self.assertEqual(count, 2 * 36)

  def test_convolution_is_2_outputs_inputs_window(self):
    # NHWC [1, 5, 5, 2] with a 3x3 kernel to 4 features, VALID: [1, 3, 3, 4].
    conv = functools.partial(lax.conv_general_dilated, window_strides=(1, 1),
                             padding='VALID',
                             dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    count = flops.matmul_flops(conv, _zeros(1, 5, 5, 2), _zeros(3, 3, 2, 4))
    self.assertEqual(count, 2 * (3 * 3 * 4) * 2 * 9)

  def test_grouped_convolution_counts_inputs_per_group(self):
    # 4 input features in 2 groups: each output sees 2 of them.
    conv = functools.partial(lax.conv_general_dilated, window_strides=(1, 1),
                             padding='VALID', feature_group_count=2,
                             dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    count = flops.matmul_flops(conv, _zeros(1, 5, 5, 4), _zeros(3, 3, 2, 4))
    self.assertEqual(count, 2 * (3 * 3 * 4) * 2 * 9)

  def test_same_convolution_gradient_is_three_forwards(self):
    # Stride 1, SAME: the input and the kernel gradients are convolutions
    # of the forward's size.
    def loss(x, w):
      return jnp.sum(lax.conv_general_dilated(
          x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))

    forward = 2 * (5 * 5 * 4) * 2 * 9
    count = flops.matmul_flops(jax.grad(loss, argnums=(0, 1)),
                               _zeros(1, 5, 5, 2), _zeros(3, 3, 2, 4))
    self.assertEqual(count, 3 * forward)


# Small benchmark models: B captions, T tokens, V words, H units, E embedding,
# F image feature floats.
SIZES = (
    dict(batch=2, max_len=3, vocab=7, hidden=4, embed=3, feature_dim=5),
    dict(batch=3, max_len=4, vocab=11, hidden=6, embed=5, feature_dim=2),
)
GATES = {'lstm': 4, 'gru': 3}


def _forward_count(b, t, v, h, e, f, g):
  """Forward matmul FLOPs of ShowTell on [B, T + 1] tokens (G gate units)."""
  steps = t + 1  # the image first, then T word inputs
  return (
      2 * b * f * e  # image Dense: [B, F] x [F, E]
      + 2 * (b * steps) * e * g  # input projection: [B(T+1), E] x [E, G]
      + steps * 2 * b * h * g  # recurrent: [B, H] x [H, G] per step
      + 2 * (b * t) * h * v  # output Dense on hidden[:, 1:]: [BT, H] x [H, V]
  )  # the word embedding is a gather: no matmul


def _backward_count(b, t, v, h, e, f, g):
  """Backward matmul FLOPs of the same (custom VJP of cells.py)."""
  steps = t + 1
  return (
      # output (the fused output layer of models/output_layer.py): dW and
      # the bias gradient in one [H + 1, BT] x [BT, V] (a row of ones
      # appended), and dH = [BT, V] x [V, H]
      2 * (b * t) * (h + 1) * v + 2 * (b * t) * h * v
      + steps * 2 * b * g * h  # per reversed step: dgates [B, G] x W_hh^T
      + 2 * h * (steps * b) * g  # dW_hh once: einsum over (t, b)
      + 2 * (2 * (b * steps) * e * g)  # input projection: dW and dinputs
      + 2 * f * b * e  # image Dense: dW only (the features are no parameter)
  )  # the embedding gradient is a scatter-add: no matmul


class TrainStepFlopsTest(parameterized.TestCase):

  @parameterized.product(cell=['lstm', 'gru'], dims=SIZES)
  def test_train_step_matches_hand_count(self, cell, dims):
    size = bench_model.ModelSize(decoder=cell, **dims)
    setup = bench_model.train_setup(size)
    shape = (size.batch, size.max_len, size.vocab, size.hidden, size.embed,
             size.feature_dim, GATES[cell] * size.hidden)
    self.assertEqual(train_step.step_flops(setup),
                     _forward_count(*shape) + _backward_count(*shape))

  @parameterized.parameters('lstm', 'gru')
  def test_forward_alone_matches_hand_count(self, cell):
    size = bench_model.ModelSize(decoder=cell, **SIZES[0])
    setup = bench_model.train_setup(size)
    images, tokens = setup.batch['image'], setup.batch['tokens'][:, :-1]
    count = flops.matmul_flops(
        lambda p: setup.model.logits(p, images, tokens, train=False)[0],
        setup.state.params)
    shape = (size.batch, size.max_len, size.vocab, size.hidden, size.embed,
             size.feature_dim, GATES[cell] * size.hidden)
    self.assertEqual(count, _forward_count(*shape))


def _decode_count(b, t, v, h, e, f, g, beam):
  """Decoding FLOPs: the image context once, then T steps of B * beam rows."""
  start = (
      2 * b * f * e  # prepare: image Dense
      + 2 * b * e * g  # init_carry: project the image
      + 2 * b * h * g  # init_carry: one recurrent step from the zero state
  )
  rows = b * beam
  per_step = (
      2 * rows * e * g  # project the embedded tokens
      + 2 * rows * h * g  # recurrent matmul
      + 2 * rows * h * v  # output layer
  )  # top-k, beam gathers and the embedding lookup are not matmuls
  return start + t * per_step


class DecodeFlopsTest(parameterized.TestCase):

  @parameterized.parameters(
      ('lstm', 'greedy', 1, 3),
      ('lstm', 'beam', 3, 3),
      ('lstm', 'beam', 3, 6),
      ('gru', 'beam', 2, 4),
  )
  def test_decode_matches_hand_count(self, cell, mode, beam, max_len):
    dims = dict(SIZES[0], max_len=max_len)
    size = bench_model.ModelSize(decoder=cell, **dims)
    model, params = bench_model.init_params(size)
    images = bench_model.features(size)
    count = decode.decode_flops(model, params, images, mode=mode, beam=beam,
                                max_len=max_len)
    shape = (size.batch, max_len, size.vocab, size.hidden, size.embed,
             size.feature_dim, GATES[cell] * size.hidden)
    self.assertEqual(count, _decode_count(*shape, beam=beam))


if __name__ == '__main__':
  absltest.main()
