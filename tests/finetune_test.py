"""Converted encoder weights in a captioner; frozen and fine-tuned encoders.

The weights are a capjax encoder checkpoint (what `convert_weights` writes)
of the tiny shapes config's small CNN, so every fact is checked through the
real loop pieces (`train.setup`, `train.train_step`, the checkpointer) in
seconds; the ImageNet encoders reach the same code through the same
checkpoint format.
"""

import dataclasses
import functools
import os
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
from flax import serialization
import jax
import numpy as np

from capjax import checkpointing
from capjax import config_checks
from capjax import optimizers
from capjax import tasks
from capjax import train
from capjax.models.encoders import checkpoint
from configs.captioning import shapes as shapes_config
from configs.mrnn import flickr8k as mrnn_flickr8k


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
    # A random, trainable encoder (the defaults).
    cls.plain = train.setup(cls.config, cls.meta, cls.batch)
    encoder = cls.plain.model.encoder
    cls.encoder = encoder
    init = jax.jit(encoder.init)
    cls.weights = jax.device_get(init(jax.random.key(7),
                                      cls.batch['image'][:1]))
    cls.weights_dir = _save_encoder(os.path.join(cls.tmp, 'w7'), encoder,
                                    cls.weights)
    cls.other_dir = _save_encoder(
        os.path.join(cls.tmp, 'w8'), encoder,
        jax.device_get(init(jax.random.key(8), cls.batch['image'][:1])))
    # Converted weights, frozen; its jitted step is shared.
    cls.frozen_config = tiny_config(os.path.join(cls.tmp, 'data'), **{
        'model.encoder.weights': cls.weights_dir,
        'model.encoder.trainable': False})
    _, cls.frozen_meta = task.open_data(cls.frozen_config)
    cls.frozen = train.setup(cls.frozen_config, cls.frozen_meta, cls.batch)
    cls.frozen_step = staticmethod(jax.jit(cls.frozen.step_fn))

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _config(self, **overrides):
    return tiny_config(os.path.join(self.tmp, 'data'), **overrides)

  def _frozen_steps(self, count):
    state = self.frozen.state
    for _ in range(count):
      state, _ = self.frozen_step(state, self.batch, self.frozen.dropout_rng)
    return state

  def test_converted_weights_replace_only_the_random_encoder(self):
    _assert_trees_equal(self, self.frozen.state.params['encoder'],
                        self.weights)
    _assert_trees_equal(self, self.frozen.state.params['decoder'],
                        self.plain.state.params['decoder'])
    self.assertEqual(self.frozen_meta['encoder_weights']['arch'], 'small_cnn')
    self.assertLen(self.frozen_meta['encoder_weights']['sha256'], 64)

  def test_a_resume_with_other_weights_is_refused(self):
    workdir = os.path.join(self.tmp, 'resume')
    os.makedirs(workdir)
    config = self._config(**{'model.encoder.weights': self.other_dir})
    other_meta = tasks.get(config).open_data(config)[1]
    train._check_meta(workdir, self.frozen_meta)  # pylint: disable=protected-access
    train._check_meta(workdir, self.frozen_meta)  # pylint: disable=protected-access
    with self.assertRaisesRegex(train.MetaMismatchError,
                                'another encoder_weights'):
      train._check_meta(workdir, other_meta)  # pylint: disable=protected-access

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
      checkpoint.load_params(self.other_dir,
                             self.frozen_meta['encoder_weights']['sha256'])

  def test_start_up_reads_the_weights_once(self):
    # The meta's check (`describe`) walks the file without building arrays;
    # the params are built once, for the state.
    restore = serialization.msgpack_restore
    with mock.patch.object(checkpoint.serialization, 'msgpack_restore',
                           side_effect=restore) as reads:
      _, meta = tasks.get(self.frozen_config).open_data(self.frozen_config)
      model = self.frozen.task.create_model(self.frozen_config, meta)
      pretrained = model.pretrained_params()
    self.assertEqual(reads.call_count, 1)
    self.assertEqual(meta, self.frozen_meta)
    _assert_trees_equal(self, pretrained['encoder'], self.weights)

  def test_damaged_weights_stop_the_meta_with_one_line(self):
    with open(os.path.join(self.weights_dir, checkpoint.PARAMS_NAME),
              'rb') as f:
      data = f.read()
    for name, damaged_data in (('cut', data[:-7]), ('extra', data + b'\x00'),
                               ('empty', b'')):
      damaged = shutil.copytree(self.weights_dir,
                                os.path.join(self.tmp, f'damaged-{name}'))
      with open(os.path.join(damaged, checkpoint.PARAMS_NAME), 'wb') as f:
        f.write(damaged_data)
      config = self._config(**{'model.encoder.weights': damaged})
      with self.assertRaisesRegex(ValueError,
                                  'params.msgpack is damaged') as caught:
        tasks.get(config).open_data(config)
      self.assertNotIn('\n', str(caught.exception))

  def test_weights_of_another_shape_name_the_layer(self):
    wide_encoder = dataclasses.replace(self.encoder, channels=(8, 24))
    wide = _save_encoder(
        os.path.join(self.tmp, 'wide'), wide_encoder,
        jax.device_get(jax.jit(wide_encoder.init)(
            jax.random.key(0), self.batch['image'][:1])))
    config = self._config(**{'model.encoder.weights': wide})
    _, meta = tasks.get(config).open_data(config)
    self.assertEqual(meta['encoder_weights']['fields']['channels'], [8, 24])
    # The meta's fields build the encoder; a record that does not fit the
    # file is named by layer before anything is compiled.
    meta['encoder_weights']['fields']['channels'] = [8, 16]
    with self.assertRaisesRegex(ValueError, r"encoder\['conv1'\].* is "
                                r'\(24,\) there, \(16,\) for this model'):
      train.setup(config, meta, self.batch)

  def test_frozen_encoder_is_bit_identical_and_has_no_optimizer_state(self):
    decoder_size = _sizes(self.frozen.state.params['decoder'])
    # Adam's two moments of the decoder, and scalar step counts.
    self.assertLess(_sizes(self.frozen.state.opt_state) - 2 * decoder_size, 8)
    self.assertGreater(_sizes(self.plain.state.opt_state),
                       2 * _sizes(self.plain.state.params) - 1)
    state = self._frozen_steps(3)
    _assert_trees_equal(self, state.params['encoder'], self.weights)
    moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()),
                         state.params['decoder'],
                         self.frozen.state.params['decoder'])
    self.assertGreater(max(jax.tree.leaves(moved)), 0.0)

  def test_a_frozen_step_computes_no_encoder_weight_gradient(self):
    kernels = {shape for x in jax.tree.leaves(self.weights) if x.ndim == 2
               # either orientation of a weight gradient
               for shape in (tuple(x.shape), tuple(x.shape)[::-1])}

    def weight_gradients(run):
      """Matmuls of the step whose output has an encoder kernel's shape."""
      jaxpr = jax.make_jaxpr(run.step_fn)(run.state, self.batch,
                                          run.dropout_rng)
      return sum(1 for eqn in _equations(jaxpr.jaxpr)
                 if eqn.primitive.name == 'dot_general'
                 and tuple(eqn.outvars[0].aval.shape) in kernels)

    self.assertEqual(weight_gradients(self.frozen), 0)
    self.assertGreaterEqual(weight_gradients(self.plain), 3)  # 2 convs, fc

  def test_the_multiplier_scales_the_encoder_update_exactly_on_sgd(self):
    deltas, decoders = {}, {}
    for multiplier in (1.0, 0.1):
      config = self._config(**{
          'optimizer.name': 'sgd', 'optimizer.schedule': 'constant',
          'optimizer.warmup_steps': 0, 'optimizer.learning_rate': 0.5,
          'optimizer.grad_clip_norm': 0.0,
          'optimizer.encoder_lr_multiplier': multiplier})
      # What `train.setup` builds, from the plain run's fresh params.
      tx = optimizers.create(config.optimizer, config.train.num_steps)
      params = self.plain.state.params
      start = train.TrainState(step=self.plain.state.step, params=params,
                               opt_state=tx.init(params))
      step = functools.partial(train.train_step, task=self.plain.task,
                               model=self.plain.model, tx=tx, config=config)
      state, _ = jax.jit(step)(start, self.batch, self.plain.dropout_rng)
      deltas[multiplier] = jax.tree.map(
          lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64),
          state.params['encoder'], params['encoder'])
      decoders[multiplier] = state.params['decoder']
    _assert_trees_equal(self, decoders[1.0], decoders[0.1])
    for big, small, start in zip(jax.tree.leaves(deltas[1.0]),
                                 jax.tree.leaves(deltas[0.1]),
                                 jax.tree.leaves(params['encoder'])):
      # Exact up to the float32 rounding of `params - update`.
      rounding = 2 * np.finfo(np.float32).eps * (np.abs(start).max()
                                                 + np.abs(big).max())
      np.testing.assert_allclose(small, 0.1 * big, rtol=0, atol=rounding)
    self.assertGreater(max(np.abs(x).max()
                           for x in jax.tree.leaves(deltas[1.0])), 0.0)

  def test_a_restored_frozen_state_steps_as_the_uninterrupted_one(self):
    state = self._frozen_steps(2)
    workdir = os.path.join(self.tmp, 'restore')
    saver = checkpointing.Checkpointer(workdir, keep=1)
    saver.save(2, jax.device_get(state), self.frozen_config, self.frozen_meta)
    saver.wait()
    saver.close()
    reader = checkpointing.Checkpointer(workdir, keep=1)
    restored = reader.restore_latest(self.frozen.state)
    # A resume with the encoder trainable again (another optimizer state)
    # is refused, not restarted from step 0.
    with self.assertRaises(checkpointing.CheckpointMismatchError):
      reader.restore_latest(self.plain.state)
    reader.close()
    _assert_trees_equal(self, restored.state, state)
    rng = self.frozen.dropout_rng
    _assert_trees_equal(self, self.frozen_step(restored.state, self.batch,
                                               rng)[0],
                        self.frozen_step(state, self.batch, rng)[0])


class MrnnCnnConfigTest(absltest.TestCase):

  def test_the_papers_cnn_is_frozen_unless_fine_tuned(self):
    frozen = mrnn_flickr8k.get_config('cnn=vgg16,weights=w/vgg16')
    self.assertEqual(frozen.model.encoder.name, 'vgg16')
    self.assertEqual(frozen.model.encoder.weights, 'w/vgg16')
    self.assertFalse(frozen.model.encoder.trainable)
    self.assertEqual(frozen.dataset.image_size, 224)
    tuned = mrnn_flickr8k.get_config('cnn=alexnet,weights=w/a,finetune')
    self.assertTrue(tuned.model.encoder.trainable)
    self.assertEqual(tuned.optimizer.encoder_lr_multiplier, 0.1)
    with self.assertRaisesRegex(ValueError, 'need cnn=vgg16'):
      mrnn_flickr8k.get_config('finetune')
    with self.assertRaisesRegex(ValueError, "Unknown cnn='resnet50'"):
      mrnn_flickr8k.get_config('cnn=resnet50')


if __name__ == '__main__':
  absltest.main()
