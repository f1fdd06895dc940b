"""Features datasets: extraction by config, resuming, training on them."""

import importlib
import json
import os
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
import jax
import numpy as np
import optax

from capjax import config_base
from capjax import config_checks
from capjax import feature_dataset
from capjax import train
from capjax.data import crops
from capjax.data import feature_source
from capjax.data import pipeline
from capjax.models.encoders import checkpoint
from capjax.models.encoders import small_cnn
from capjax.tasks import captioning
from configs.captioning import flickr8k_features as captioning_features
from configs.features import flickr8k_inception_v3 as configs_features
from configs.retrieval import flickr8k as retrieval_flickr8k

SIZE = 32
FIELDS = {'channels': [4, 8], 'strides': [2, 2], 'global_dim': 6}


def _extraction_config(data_dir, weights, **features):
  c = config_base.base_config()
  c.dataset.name = 'shapes'
  c.dataset.builder_config = 'tiny'
  c.dataset.data_dir = data_dir
  c.features.weights = weights
  c.features.grid = True
  c.features.batch = 8
  c.features.chunk = 16
  for key, value in features.items():
    c.features[key] = value
  return c


def _train_config(data_dir, folder):
  c = config_base.base_config()
  c.dataset.name = 'shapes'
  c.dataset.builder_config = 'tiny'
  c.dataset.data_dir = data_dir
  c.dataset.features = folder
  c.model.encoder.name = 'identity'
  c.model.decoder = 'merge'
  c.model.embed_dim = 8
  c.model.hidden_dim = 16
  c.train.batch_size = 8
  c.train.num_steps = 2
  c.train.log_every = 1
  c.train.checkpoint_every = 2
  c.train.prefetch = 0
  c.train.best_metric = ''
  c.eval.splits = ()
  c.eval.validation_split = ''
  return c


class FeatureDatasetTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='capjax-feature-dataset-test-')
    cls.data_dir = os.path.join(cls.tmp, 'tfds')
    cls.encoder = small_cnn.SmallCNN(**FIELDS)
    cls.params = cls.encoder.init(jax.random.key(0),
                                  np.zeros((1, SIZE, SIZE, 3), np.uint8))
    cls.weights = os.path.join(cls.tmp, 'weights')
    checkpoint.save(cls.weights, 'small_cnn', FIELDS, cls.params,
                    source='random', image_size=SIZE)
    cls.config = _extraction_config(cls.data_dir, cls.weights)
    cls.summary = feature_dataset.extract_dataset(
        cls.config, os.path.join(cls.tmp, 'run'))
    cls.folder = cls.summary['folder']

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _copy(self, name):
    """A copy of the features folder that a test may damage."""
    copy = os.path.join(self.tmp, name)
    shutil.copytree(self.folder, copy)
    return copy

  def _edit_info(self, folder, **changes):
    info = feature_source.read_info(folder)
    info.update(changes)
    with open(os.path.join(folder, 'info.json'), 'w') as f:
      json.dump(info, f)

  def test_every_split_holds_the_encoders_features_by_image_id(self):
    info = feature_source.read_info(self.folder)
    self.assertEqual(sorted(info['splits']), ['test', 'train', 'validation'])
    self.assertEqual(self.summary['splits'],
                     {'train': 240, 'validation': 40, 'test': 40})
    self.assertEqual(info['arch'], 'small_cnn')
    self.assertEqual(info['fingerprint'],
                     feature_dataset.fingerprint(self.weights))
    source = pipeline.load_source('shapes', 'test', data_dir=self.data_dir,
                                  builder_config='tiny')
    ids = np.load(feature_source.array_path(self.folder, 'test',
                                            'image_ids'))
    np.testing.assert_array_equal(ids, source.image_ids)
    pooled = np.load(feature_source.array_path(self.folder, 'test',
                                               'global'), mmap_mode='r')
    grid = np.load(feature_source.array_path(self.folder, 'test', 'grid'),
                   mmap_mode='r')
    self.assertEqual(pooled.dtype, np.float16)
    self.assertEqual(info['splits']['test'],
                     {'global': [40, 6], 'grid': [40, 64, 10]})  # 8 + x, y
    images = np.concatenate([
        crops.load_bytes(source.records[i]['image'], 'test', 'squash', SIZE,
                         SIZE) for i in (0, 17, 39)])
    expected_pooled, expected_grid = self.encoder.apply(self.params, images)
    for row, i in enumerate((0, 17, 39)):
      np.testing.assert_allclose(pooled[i], expected_pooled[row], rtol=2e-3,
                                 atol=1e-3)
      np.testing.assert_allclose(grid[i], expected_grid[row], rtol=2e-3,
                                 atol=1e-3)

  def test_a_killed_run_continues_to_the_uninterrupted_result(self):
    config = _extraction_config(self.data_dir, self.weights,
                                splits=('test',))
    workdir = os.path.join(self.tmp, 'killed')
    # Stopped after its first chunk of 16 images (the throttle's sleep).
    with mock.patch.object(feature_dataset.time, 'sleep',
                           side_effect=KeyboardInterrupt):
      with self.assertRaises(KeyboardInterrupt):
        feature_dataset.extract_dataset(config, workdir, throttle_s=1.0)
    partial = os.path.join(workdir, 'features', 'test.partial')
    with open(os.path.join(partial, 'progress.json')) as f:
      self.assertEqual(json.load(f), {'rows': 16})
    summary = feature_dataset.extract_dataset(config, workdir)
    self.assertEqual(summary['resumed_images'], 16)
    self.assertFalse(os.path.exists(partial))
    for key in ('image_ids', 'global', 'grid'):
      np.testing.assert_array_equal(
          np.load(feature_source.array_path(summary['folder'], 'test', key)),
          np.load(feature_source.array_path(self.folder, 'test', key)))
    other = _extraction_config(self.data_dir, self.weights,
                               splits=('test',), crop='center')
    with self.assertRaisesRegex(ValueError, 'other weights, settings'):
      feature_dataset.extract_dataset(other, workdir)

  def test_captioning_trains_on_the_features_of_each_image(self):
    config = _train_config(self.data_dir, self.folder)
    config_checks.check(config)
    batches, _ = captioning.open_data(config)
    batch = next(iter(batches(0)))
    self.assertEqual(batch['image'].shape, (8, 6))
    train_ids = np.load(feature_source.array_path(self.folder, 'train',
                                                  'image_ids'))
    pooled = np.load(feature_source.array_path(self.folder, 'train',
                                               'global'))
    rows = {int(i): r for r, i in enumerate(train_ids)}
    for image, image_id in zip(batch['image'], batch['image_id']):
      np.testing.assert_array_equal(image, pooled[rows[int(image_id)]])
    # The task's functions, a few Adam steps on this batch.
    model = captioning.create_model(config, _)
    params = jax.jit(captioning.init_params, static_argnums=0)(
        model, jax.random.key(0), {k: batch[k] for k in ('image', 'tokens')})
    tx = optax.adam(1e-2)
    state = tx.init(params)

    def loss_fn(p):
      totals = captioning.totals(model, p, batch, train=False)
      return captioning.loss(totals, totals, config)

    @jax.jit
    def step(params, state):
      value, grads = jax.value_and_grad(loss_fn)(params)
      updates, state = tx.update(grads, state, params)
      return optax.apply_updates(params, updates), state, value

    losses = []
    for _ in range(3):
      params, state, value = step(params, state)
      losses.append(float(value))
    self.assertLess(losses[-1], losses[0])

  def test_the_run_meta_refuses_other_features(self):
    workdir = os.path.join(self.tmp, 'train')

    class Saved(Exception):
      """Stops a run once it has checked and saved its meta."""

    with mock.patch.object(train, 'setup', side_effect=Saved):
      with self.assertRaises(Saved):
        train.train_and_evaluate(_train_config(self.data_dir, self.folder),
                                 workdir)
      with open(os.path.join(workdir, 'meta.json')) as f:
        meta = json.load(f)
      self.assertEqual(meta['features']['fingerprint'],
                       feature_dataset.fingerprint(self.weights))
      other = self._copy('other_weights')
      self._edit_info(other, fingerprint='0123456789abcdef')
      with self.assertRaisesRegex(train.MetaMismatchError, 'features'):
        train.train_and_evaluate(_train_config(self.data_dir, other),
                                 workdir)

  def test_one_line_errors(self):
    config = _train_config(self.data_dir, self.folder)
    config.model.encoder.name = 'small_cnn'
    with self.assertRaisesRegex(config_checks.ConfigError,
                                'only the identity encoder'):
      config_checks.check(config)
    config = _train_config(self.data_dir, '')
    with self.assertRaisesRegex(config_checks.ConfigError,
                                'dataset.features is empty'):
      config_checks.check(config)
    config = _train_config(self.data_dir, os.path.join(self.tmp, 'nowhere'))
    with self.assertRaisesRegex(config_checks.ConfigError,
                                'not a features folder.*extract_features'):
      config_checks.check(config)
    no_test = self._copy('no_test')
    info = feature_source.read_info(no_test)
    del info['splits']['test']
    self._edit_info(no_test, splits=info['splits'])
    config = _train_config(self.data_dir, no_test)
    config.eval.splits = ('test',)
    with self.assertRaisesRegex(config_checks.ConfigError,
                                "no 'test' split.*extract_features"):
      config_checks.check(config)
    with self.assertRaisesRegex(feature_source.FeaturesError,
                                "no 'test' split.*extract_features"):
      pipeline.open_split(config.dataset, 'test')
    wrong_id = self._copy('wrong_id')
    path = feature_source.array_path(wrong_id, 'validation', 'image_ids')
    ids = np.load(path)
    lost = int(ids[3])
    ids[3] = -5
    np.save(path, ids)
    dataset = _train_config(self.data_dir, wrong_id).dataset
    with self.assertRaisesRegex(
        ValueError, f'no features for 1 .*image id: {lost}.*extract_'):
      pipeline.open_split(dataset, 'validation')
    config = _extraction_config(self.data_dir, '')
    with self.assertRaisesRegex(ValueError, 'features.weights is empty'):
      feature_dataset.extract_dataset(config, self.tmp)


class FeatureConfigsTest(absltest.TestCase):

  def test_the_flickr8k_configs_and_their_variants(self):
    for name in ('flickr8k_inception_v3', 'flickr8k_vgg16'):
      module = importlib.import_module(f'configs.features.{name}')
      for arg in (None, 'tiny', 'grid'):
        config = module.get_config(arg)
        self.assertEqual(config.dataset.name, 'flickr8k')
        self.assertIn(config.features.crop, crops.MODES)
        self.assertEqual(config.features.grid, arg == 'grid')
      with self.assertRaisesRegex(ValueError, 'Unknown config variant'):
        module.get_config('huge')
    self.assertEqual(configs_features.get_config('grid').features.size, 299)
    train_config = captioning_features.get_config('tiny,cell=gru')
    self.assertEqual(train_config.model.encoder.name, 'identity')
    self.assertEqual(train_config.model.cell, 'gru')
    self.assertEqual(
        captioning_features.get_config('features=vgg16').dataset.features,
        'runs/flickr8k_vgg16/features')
    with self.assertRaisesRegex(ValueError, 'features'):
      captioning_features.get_config('features=alexnet')
    retrieval_vgg = retrieval_flickr8k.get_config(
        'tiny,model=bilstm,features=runs/vgg16/features')
    self.assertEqual(retrieval_vgg.dataset.features, 'runs/vgg16/features')
    self.assertEqual(retrieval_vgg.model.encoder.name, 'identity')
    self.assertEqual(retrieval_vgg.retrieval.text_encoder, 'bilstm')


if __name__ == '__main__':
  absltest.main()
