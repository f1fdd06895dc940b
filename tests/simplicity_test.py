"""Wang's SIMPLIcity: the simplicity builder, its classes and splits."""

import os
import shutil
import tempfile

from absl.testing import absltest
import jax
import numpy as np
from PIL import Image

from capjax import config_checks
from capjax.data import feature_source
from capjax.data import pipeline
from capjax.data import simplicity
from capjax.data import sources
from capjax.evaluators import retrieval as retrieval_evaluator
from capjax.metrics import retrieval as retrieval_metrics
from capjax.tasks import retrieval as task
from configs.retrieval import shapes as shapes_config
from configs.retrieval import simplicity as simplicity_config

# Images written per class (N % 100); 1.jpg is then overwritten as corrupt.
WITHIN = (0, 1, 85, 95)
CLASS_COLOURS = [(25 * c, 255 - 25 * c, 100) for c in range(10)]


def _make_images(root):
  folder = os.path.join(root, 'image.orig')
  os.makedirs(folder)
  for label in range(10):
    for within in WITHIN:
      Image.new('RGB', (12, 8), CLASS_COLOURS[label]).save(
          os.path.join(folder, f'{100 * label + within}.jpg'))
  with open(os.path.join(folder, '1.jpg'), 'wb') as f:
    f.write(b'not a jpeg')


class SimplicityTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.manual_dir = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.manual_dir)
    _make_images(cls.manual_dir)
    cls.data_dir = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.data_dir)
    for config in ('default', 'flickr_words', 'split'):
      sources.prepare(f'simplicity/{config}', data_dir=cls.data_dir,
                      manual_dir=cls.manual_dir)

  def _source(self, name, split):
    return pipeline.load_source(name, split, data_dir=self.data_dir,
                                image_size=4)

  def test_classes_are_the_hundreds(self):
    self.assertEqual(simplicity.image_class('0.jpg'), (0, 'africa'))
    self.assertEqual(simplicity.image_class('images/314.jpg'), (3, 'buses'))
    self.assertEqual(simplicity.image_class('999.jpg'), (9, 'food'))
    with self.assertRaisesRegex(ValueError, '0.jpg .. 999.jpg'):
      simplicity.image_class('1000.jpg')

  def test_default_puts_every_image_in_test_and_counts_the_others(self):
    builder = sources.prepare('simplicity', data_dir=self.data_dir)
    self.assertEqual(list(builder.info.splits), ['test'])
    self.assertEqual(builder.info.splits['test'].num_examples, 39)
    self.assertEqual(builder.info.metadata['skipped']['test'],
                     {'missing': 960, 'corrupt': 1, 'no_captions': 0})

  def test_split_config_splits_each_class_80_10_10(self):
    got = {split: sorted(self._source('simplicity/split', split).image_ids)
           for split in ('train', 'validation', 'test')}
    self.assertEqual(got, {
        'train': sorted({100 * c + w for c in range(10) for w in (0, 1)}
                        - {1}),
        'validation': [100 * c + 85 for c in range(10)],
        'test': [100 * c + 95 for c in range(10)]})

  def test_class_keyword_is_the_caption_and_the_label(self):
    source = self._source('simplicity', 'test')
    names = [simplicity.CLASSES[i // 100] for i in source.image_ids]
    self.assertEqual(source.captions, [[n] for n in names])
    self.assertEqual(source.labels, names)
    words = self._source('simplicity/flickr_words', 'test')
    self.assertEqual(list(words.image_ids), list(source.image_ids))
    by_id = dict(zip(words.image_ids, words.captions))
    self.assertEqual((by_id[100], by_id[395], by_id[995]),
                     (['beach'], ['bus'], ['food']))
    self.assertEqual(words.labels, names)
    image = source.image(list(source.image_ids).index(314 - 14 + 95))
    np.testing.assert_allclose(image.mean(axis=(0, 1)), CLASS_COLOURS[3],
                               atol=4)

  def test_retrieval_evaluator_reads_the_classes(self):
    source = self._source('simplicity', 'test')
    labels = retrieval_evaluator.image_labels(source)
    np.testing.assert_array_equal(
        labels, [simplicity.CLASSES[i // 100] for i in source.image_ids])
    # Scores that rank a query's own class first: P@3 is 100 and R@3 is
    # 3 / class size (africa lost 1.jpg, so 3 of 3; the others 3 of 4).
    scores = (labels[:, None] == labels[None, :]).astype(np.float32)
    owner = np.arange(len(labels))
    metrics = retrieval_evaluator.class_metrics(scores, labels, owner, k=3)
    for direction in ('i2t', 't2i'):
      self.assertEqual(metrics[f'{direction}_p@3/africa'], 100.0)
      self.assertEqual(metrics[f'{direction}_r@3/africa'], 100.0)
      self.assertEqual(metrics[f'{direction}_p@3/food'], 100.0)
      self.assertEqual(metrics[f'{direction}_r@3/food'], 75.0)
      self.assertAlmostEqual(metrics[f'{direction}_r@3'], 77.5)

  def test_features_of_the_folder_keep_the_classes(self):
    source = self._source('simplicity', 'test')
    path = os.path.join(self.data_dir, 'features.npz')
    names = sorted(os.listdir(os.path.join(self.manual_dir, 'image.orig')))
    np.savez(path, names=np.asarray(names), **{'global': np.arange(
        len(names), dtype=np.float32)[:, None] * np.ones((1, 3))})
    features = feature_source.FeatureSource(source, path)
    self.assertEqual(features.labels, source.labels)
    for i in range(len(source)):
      self.assertEqual(features.image(i)[0],
                       names.index(f'{source.image_ids[i]}.jpg'))

  def test_a_folder_without_the_numbered_images_is_named(self):
    root = self.enter_context(tempfile.TemporaryDirectory())
    Image.new('RGB', (4, 4)).save(os.path.join(root, 'photo.jpg'))
    with self.assertRaisesRegex(FileNotFoundError,
                                r'^simplicity: no 0.jpg .. 999.jpg in .*$'):
      sources.prepare('simplicity', manual_dir=root, data_dir=root)

  def test_a_model_trained_elsewhere_is_scored_per_class(self):
    # Seed 004: a model with another dataset's vocabulary (here the tiny
    # shapes) scored on 'simplicity:test' by the retrieval evaluator.
    config = shapes_config.get_config('tiny')
    config.dataset.data_dir = self.data_dir
    config.dataset.image_size = 16
    config.dataset.eval_manual_dir = self.manual_dir
    config.eval.splits = ('test', 'simplicity:test')
    config.eval.batch_size = 8
    config.retrieval.class_k = 3
    config_checks.check(config)
    batches, meta = task.open_data(config)
    model = task.create_model(config, meta)
    params = jax.jit(lambda rng, batch: task.init_params(model, rng, batch))(
        jax.random.key(0), next(batches(0)))
    evaluator = retrieval_evaluator.Evaluator(config, task, model, meta,
                                              'simplicity:test')
    metrics = evaluator.run(params)
    self.assertEqual(metrics['num_images'], 39)
    ids = evaluator._last['image_ids']  # pylint: disable=protected-access
    scores = evaluator._last['scores']  # pylint: disable=protected-access
    labels = np.asarray([simplicity.CLASSES[i // 100] for i in ids])
    want = retrieval_metrics.class_precision_recall_at_k(
        scores, labels, labels, 3)
    self.assertLen(want, 10)
    for label, (precision, recall) in want.items():
      self.assertAlmostEqual(metrics[f'i2t_p@3/{label}'], 100 * precision)
      self.assertAlmostEqual(metrics[f'i2t_r@3/{label}'], 100 * recall)

  def test_the_papers_config_passes_the_checks(self):
    config = simplicity_config.get_config('tiny')
    config_checks.check(config)
    self.assertIn('simplicity:test', config.eval.splits)
    for split, message in (('simplicity/split:test', 'builder config'),
                           ('wang:test', "Unknown dataset 'wang'"),
                           ('simplicity:', 'names no split')):
      config.eval.splits = ('test', split)
      with self.assertRaisesRegex(config_checks.ConfigError, message):
        config_checks.check(config)


if __name__ == '__main__':
  absltest.main()
