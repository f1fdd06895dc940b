"""Converted encoder weights in a captioner; frozen and fine-tuned encoders.

The weights are a capjax encoder checkpoint (what `convert_weights` writes)
of the tiny shapes config's small CNN, so every fact is checked through the
real loop pieces (`train.setup`, `train.train_step`, the checkpointer) in
seconds; the ImageNet encoders reach the same code through the same
checkpoint format.
"""

import dataclasses
import os
import shutil
import tempfile

from absl.testing import absltest
import jax
import numpy as np

from capjax import checkpointing
from capjax import config_checks
from capjax import tasks
from capjax import train
from capjax.models.encoders import checkpoint
from configs.captioning import shapes as shapes_config


def tiny_config(data_dir, **overrides):
  """The tiny shapes config (merge decoder, 16 images a batch)."""
  config = shapes_config.get_config('tiny,model=merge')
  config.dataset.data_dir = data_dir
  config.unlock()
  for key, value in overrides.items():
    node = config
    *path, last = key.split('.')
    for part in path:
      node = node[part]
    node[last] = value
  config.lock()
  return config


def _save_encoder(directory, encoder, params):
  fields = {f.name: getattr(encoder, f.name)
            for f in dataclasses.fields(encoder) if f.name != 'dtype'}
  checkpoint.save(directory, 'small_cnn', fields, params, source='random',
                  image_size=64)
  return directory


def _sizes(tree):
  return sum(int(np.size(x)) for x in jax.tree.leaves(tree))


def _equations(jaxpr):
  """Every equation of a jaxpr, those of its sub-jaxprs included."""
  for eqn in jaxpr.eqns:
    yield eqn
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        inner = getattr(sub, 'jaxpr', sub)
        if hasattr(inner, 'eqns'):
          yield from _equations(inner)


def _assert_trees_equal(test, a, b):
  test.assertEqual(jax.tree.structure(a), jax.tree.structure(b))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


class FinetuneTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='capjax-finetune-test-')
    cls.config = tiny_config(os.path.join(cls.tmp, 'data'))
    task = tasks.get(cls.config)
    batches, cls.meta = task.open_data(cls.config)
    cls.batch = next(iter(batches(0)))
    model = task.create_model(cls.config, cls.meta)
    init = jax.jit(model.encoder.init)
    cls.encoder = model.encoder
    cls.weights = jax.device_get(init(jax.random.key(7),
                                      cls.batch['image'][:1]))
    cls.other_weights = jax.device_get(init(jax.random.key(8),
                                            cls.batch['image'][:1]))
    cls.weights_dir = _save_encoder(os.path.join(cls.tmp, 'w7'),
                                    model.encoder, cls.weights)
    cls.other_dir = _save_encoder(os.path.join(cls.tmp, 'w8'),
                                  model.encoder, cls.other_weights)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _config(self, **overrides):
    return tiny_config(os.path.join(self.tmp, 'data'), **overrides)

  def _setup(self, config):
    _, meta = tasks.get(config).open_data(config)
    return train.setup(config, meta, self.batch), meta

  def _steps(self, run, count):
    step = jax.jit(run.step_fn)
    state = run.state
    for _ in range(count):
      state, _ = step(state, self.batch, run.dropout_rng)
    return state

  def test_converted_weights_replace_only_the_random_encoder(self):
    run, meta = self._setup(self._config(
        **{'model.encoder.weights': self.weights_dir}))
    random_run = train.setup(self.config, self.meta, self.batch)
    _assert_trees_equal(self, run.state.params['encoder'], self.weights)
    _assert_trees_equal(self, run.state.params['decoder'],
                        random_run.state.params['decoder'])
    self.assertEqual(meta['encoder_weights']['arch'], 'small_cnn')
    self.assertLen(meta['encoder_weights']['sha256'], 64)

  def test_a_resume_with_other_weights_is_refused(self):
    workdir = os.path.join(self.tmp, 'resume')
    os.makedirs(workdir)
    metas = []
    for weights in (self.weights_dir, self.other_dir):
      config = self._config(**{'model.encoder.weights': weights})
      metas.append(tasks.get(config).open_data(config)[1])
    train._check_meta(workdir, metas[0])  # pylint: disable=protected-access
    train._check_meta(workdir, metas[0])  # pylint: disable=protected-access
    with self.assertRaisesRegex(train.MetaMismatchError,
                                'another encoder_weights'):
      train._check_meta(workdir, metas[1])  # pylint: disable=protected-access

  def test_wrong_or_damaged_weights_are_one_line_errors(self):
    with self.assertRaisesRegex(config_checks.ConfigError,
                                'holds small_cnn weights but '
                                "model.encoder.name='vgg16'"):
      config_checks.check(self._config(**{
          'model.encoder.weights': self.weights_dir,
          'model.encoder.name': 'vgg16'}))
    with self.assertRaisesRegex(config_checks.ConfigError,
                                'not a capjax encoder checkpoint'):
      config_checks.check(self._config(**{
          'model.encoder.weights': os.path.join(self.tmp, 'data')}))
    with self.assertRaisesRegex(config_checks.ConfigError,
                                'retrieval task starts from random'):
      config_checks.check(self._config(**{
          'task': 'retrieval', 'model.encoder.weights': self.weights_dir}))
    damaged = shutil.copytree(self.weights_dir,
                              os.path.join(self.tmp, 'damaged'))
    path = os.path.join(damaged, checkpoint.PARAMS_NAME)
    with open(path, 'rb') as f:
      data = f.read()
    with open(path, 'wb') as f:
      f.write(data[:len(data) // 2])
    config = self._config(**{'model.encoder.weights': damaged})
    config_checks.check(config)  # the JSON is intact
    with self.assertRaisesRegex(ValueError, 'params.msgpack is damaged'):
      tasks.get(config).open_data(config)
    with self.assertRaisesRegex(ValueError, 'changed since the run'):
      checkpoint.load_params(self.other_dir, 'f' * 64)

  def test_weights_of_another_shape_name_the_layer(self):
    wide = _save_encoder(
        os.path.join(self.tmp, 'wide'),
        dataclasses.replace(self.encoder, channels=(8, 24)),
        jax.device_get(jax.jit(dataclasses.replace(
            self.encoder, channels=(8, 24)).init)(
                jax.random.key(0), self.batch['image'][:1])))
    config = self._config(**{'model.encoder.weights': wide,
                             'model.encoder.channels': (8, 24)})
    _, meta = tasks.get(config).open_data(config)
    # The meta's fields (channels 8, 24) build the encoder, so it fits.
    train.setup(config, meta, self.batch)
    # The same file under a changed meta record no longer fits.
    meta['encoder_weights']['fields']['channels'] = [8, 16]
    with self.assertRaisesRegex(ValueError, r"encoder\['conv1'\].* is "
                                r'\(24,\) there, \(16,\) for this model'):
      train.setup(config, meta, self.batch)

  def test_frozen_encoder_is_bit_identical_and_has_no_optimizer_state(self):
    run, _ = self._setup(self._config(**{
        'model.encoder.weights': self.weights_dir,
        'model.encoder.trainable': False}))
    decoder_size = _sizes(run.state.params['decoder'])
    # Adam's two moments of the decoder, and scalar step counts.
    self.assertLess(_sizes(run.state.opt_state) - 2 * decoder_size, 8)
    state = self._steps(run, 3)
    _assert_trees_equal(self, state.params['encoder'], self.weights)
    moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()),
                         state.params['decoder'],
                         run.state.params['decoder'])
    self.assertGreater(max(jax.tree.leaves(moved)), 0.0)

  def test_a_frozen_step_computes_no_encoder_weight_gradient(self):
    def weight_gradients(trainable):
      """Matmuls of the step whose output has an encoder kernel's shape."""
      config = self._config(**{'model.encoder.trainable': trainable})
      run = train.setup(config, self.meta, self.batch)
      kernels = {shape for x in jax.tree.leaves(run.state.params['encoder'])
                 if x.ndim == 2  # either orientation of a weight gradient
                 for shape in (tuple(x.shape), tuple(x.shape)[::-1])}
      jaxpr = jax.make_jaxpr(run.step_fn)(run.state, self.batch,
                                          run.dropout_rng)
      return sum(1 for eqn in _equations(jaxpr.jaxpr)
                 if eqn.primitive.name == 'dot_general'
                 and tuple(eqn.outvars[0].aval.shape) in kernels), kernels

    frozen, kernels = weight_gradients(False)
    trainable, _ = weight_gradients(True)
    self.assertEqual(frozen, 0)
    self.assertGreaterEqual(trainable, 3)  # conv0, conv1, global

  def test_the_multiplier_scales_the_encoder_update_exactly_on_sgd(self):
    deltas, decoders = {}, {}
    for multiplier in (1.0, 0.1):
      run, _ = self._setup(self._config(**{
          'optimizer.name': 'sgd', 'optimizer.schedule': 'constant',
          'optimizer.warmup_steps': 0, 'optimizer.learning_rate': 0.5,
          'optimizer.grad_clip_norm': 0.0,
          'optimizer.encoder_lr_multiplier': multiplier}))
      state = self._steps(run, 1)
      deltas[multiplier] = jax.tree.map(
          lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64),
          state.params['encoder'], run.state.params['encoder'])
      decoders[multiplier] = state.params['decoder']
    _assert_trees_equal(self, decoders[1.0], decoders[0.1])
    for big, small, start in zip(jax.tree.leaves(deltas[1.0]),
                                 jax.tree.leaves(deltas[0.1]),
                                 jax.tree.leaves(run.state.params['encoder'])):
      # Exact up to the float32 rounding of `params - update`.
      rounding = 2 * np.finfo(np.float32).eps * (np.abs(start).max()
                                                 + np.abs(big).max())
      np.testing.assert_allclose(small, 0.1 * big, rtol=0, atol=rounding)
    self.assertGreater(max(np.abs(x).max()
                           for x in jax.tree.leaves(deltas[1.0])), 0.0)

  def test_a_restored_frozen_state_steps_as_the_uninterrupted_one(self):
    config = self._config(**{'model.encoder.trainable': False,
                             'optimizer.encoder_lr_multiplier': 0.5})
    run = train.setup(config, self.meta, self.batch)
    state = self._steps(run, 2)
    workdir = os.path.join(self.tmp, 'restore')
    saver = checkpointing.Checkpointer(workdir, keep=1)
    saver.save(2, jax.device_get(state), config, self.meta)
    saver.wait()
    saver.close()
    reader = checkpointing.Checkpointer(workdir, keep=1)
    restored = reader.restore_latest(run.state)
    reader.close()
    _assert_trees_equal(self, restored.state, state)
    step = jax.jit(run.step_fn)
    _assert_trees_equal(
        self, step(restored.state, self.batch, run.dropout_rng)[0],
        step(state, self.batch, run.dropout_rng)[0])


if __name__ == '__main__':
  absltest.main()
