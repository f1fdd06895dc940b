"""A frozen CNN in the retrieval and multi-label tasks: no backward pass.

With `model.encoder.trainable=False` the step of either task builds no
gradient work through the CNN (its jaxpr holds only the forward
convolutions), keeps no optimizer state for it, and leaves it bit-identical
after real steps, while the rest of the model trains.
"""

import importlib.util
import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from capjax import tasks
from capjax import train
from configs.retrieval import shapes as retrieval_shapes

HASHTAG_CONFIG = os.path.join(os.path.dirname(__file__), '..', 'configs',
                              'hashtags', 'shapes.py')


def _hashtag_config(arg):
  spec = importlib.util.spec_from_file_location('hashtag_shapes',
                                                HASHTAG_CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _config(task_name, data_dir, trainable):
  if task_name == 'retrieval':
    config = retrieval_shapes.get_config('tiny,model=bilstm')
  else:
    config = _hashtag_config('tiny,model=multilabel')
  config.dataset.data_dir = data_dir
  config.train.prefetch = 0
  config.model.encoder.trainable = trainable
  return config


def _equations(jaxpr):
  """Every equation of a jaxpr, those of its sub-jaxprs included."""
  for eqn in jaxpr.eqns:
    yield eqn
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        inner = getattr(sub, 'jaxpr', sub)
        if hasattr(inner, 'eqns'):
          yield from _equations(inner)


def _weight_gradients(run, batch) -> int:
  """Matmuls and convolutions of a step whose output has the shape of an
  encoder weight (either orientation of a matrix): its weight gradients."""
  shapes = {shape for x in jax.tree.leaves(run.state.params['encoder'])
            if x.ndim >= 2
            for shape in (tuple(x.shape), tuple(x.shape)[::-1])}
  jaxpr = jax.make_jaxpr(run.step_fn)(run.state, batch, run.dropout_rng)
  return sum(1 for eqn in _equations(jaxpr.jaxpr)
             if eqn.primitive.name in ('dot_general', 'conv_general_dilated')
             and tuple(eqn.outvars[0].aval.shape) in shapes)


def _products(fn, *args) -> int:
  """How many matmuls and convolutions `fn` traces to."""
  jaxpr = jax.make_jaxpr(fn)(*args)
  return sum(1 for eqn in _equations(jaxpr.jaxpr)
             if eqn.primitive.name in ('dot_general', 'conv_general_dilated'))


def _sizes(tree) -> int:
  return sum(int(np.size(x)) for x in jax.tree.leaves(tree))


class FrozenEncoderTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='capjax-frozen-encoder-test-')
    cls.runs = {}
    for task_name in ('retrieval', 'multilabel'):
      data_dir = os.path.join(cls.tmp, task_name)
      for trainable in (True, False):
        config = _config(task_name, data_dir, trainable)
        batches, meta = tasks.get(config).open_data(config)
        batch = next(iter(batches(0)))
        cls.runs[task_name, trainable] = (train.setup(config, meta, batch),
                                          batch)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  @parameterized.parameters('retrieval', 'multilabel')
  def test_a_frozen_step_computes_no_gradient_through_the_cnn(self, name):
    frozen, batch = self.runs[name, False]
    trained, _ = self.runs[name, True]
    self.assertEqual(_weight_gradients(frozen, batch), 0)
    # The tiny CNN's two 3x3 layers (patches + matmul) and its global fc.
    self.assertGreaterEqual(_weight_gradients(trained, batch), 3)
    # Nor the gradient of the CNN's input of a layer: the frozen step has
    # the trained one's products less at least 2 per encoder layer.
    step = lambda run: _products(run.step_fn, run.state, batch,
                                 run.dropout_rng)
    self.assertLessEqual(step(frozen), step(trained) - 2 * 3 + 1)

  @parameterized.parameters('retrieval', 'multilabel')
  def test_frozen_cnn_is_bit_identical_after_steps_and_has_no_state(
      self, name):
    run, batch = self.runs[name, False]
    params = run.state.params
    rest = _sizes({k: v for k, v in params.items() if k != 'encoder'})
    self.assertGreater(_sizes(params['encoder']), 0)
    # Adam's two moments of the trained params, and scalar step counts.
    self.assertLess(_sizes(run.state.opt_state) - 2 * rest, 8)
    step = jax.jit(run.step_fn)
    state = run.state
    for _ in range(2):
      state, metrics = step(state, batch, run.dropout_rng)
    self.assertTrue(np.isfinite(float(metrics['grad_norm'])))
    for got, want in zip(jax.tree.leaves(state.params['encoder']),
                         jax.tree.leaves(params['encoder'])):
      np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    moved = [float(np.abs(np.asarray(a) - np.asarray(b)).max())
             for key in params if key != 'encoder'
             for a, b in zip(jax.tree.leaves(state.params[key]),
                             jax.tree.leaves(params[key]))]
    self.assertGreater(max(moved), 0.0)


if __name__ == '__main__':
  absltest.main()
