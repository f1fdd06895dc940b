"""Precomputed features through the caption pipelines (identity encoder)."""

import io
import os
import tempfile

from absl.testing import absltest
import numpy as np
from PIL import Image

from capjax.data import feature_source
from capjax.data import pipeline
from capjax.data import sources
from capjax.data import vocab as vocab_lib
from capjax.models.encoders import identity

DIM = 5


def _png(value):
  buffer = io.BytesIO()
  Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(buffer, 'PNG')
  return buffer.getvalue()


def _split(names):
  records = [{'image': _png(i), 'image_id': 100 + i,
              'file_name': f'images/{name}'.encode(),
              'captions': [f'caption {i} of {name}'.encode(), b'a photo']}
             for i, name in enumerate(names)]
  return sources.CaptionSource(records, name='photos', split='train',
                               image_shape=(4, 4), resize=False)


class FeatureSourceTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    tmp = tempfile.TemporaryDirectory()
    self.addCleanup(tmp.cleanup)
    self.path = os.path.join(tmp.name, 'features.npz')
    self.names = ['b.jpg', 'a.jpg', 'c.jpg']
    # The extractor's order (sorted names) differs from the split's.
    self.features = {n: np.arange(DIM, dtype=np.float16) + 10 * k
                     for k, n in enumerate(sorted(self.names))}
    np.savez(self.path, names=np.asarray(sorted(self.names)),
             **{'global': np.stack([self.features[n]
                                    for n in sorted(self.names)])})

  def test_batches_carry_each_images_own_features(self):
    source = feature_source.FeatureSource(_split(self.names), self.path)
    vocab = vocab_lib.Vocab.build(pipeline.all_captions(source))
    batch = next(pipeline.train_batches(source, vocab, batch_size=4,
                                        max_len=6, seed=0, prefetch=0))
    self.assertEqual(batch['image'].shape, (4, DIM))
    self.assertEqual(batch['image'].dtype, np.float32)
    for image, image_id in zip(batch['image'], batch['image_id']):
      name = self.names[int(image_id) - 100]
      np.testing.assert_array_equal(image, self.features[name])
    global_feature, grid = identity.Identity().apply({}, batch['image'])
    self.assertEqual(grid.shape, (4, 1, DIM))
    np.testing.assert_array_equal(global_feature, batch['image'])

  def test_eval_padding_is_zero_features(self):
    source = feature_source.FeatureSource(_split(self.names), self.path)
    vocab = vocab_lib.Vocab.build(pipeline.all_captions(source))
    batches = list(pipeline.eval_batches(source, vocab, batch_size=2,
                                         max_len=6, prefetch=0))
    last = batches[-1]
    self.assertEqual(last['image'].shape, (2, DIM))
    np.testing.assert_array_equal(last['mask'], [1, 0])
    np.testing.assert_array_equal(last['image'][1], np.zeros(DIM))

  def test_missing_features_and_grids_are_named(self):
    with self.assertRaisesRegex(ValueError, r'no features for 1 .*d\.jpg'):
      feature_source.FeatureSource(_split(self.names + ['d.jpg']), self.path)
    with self.assertRaisesRegex(ValueError, 'no .grid. array.*--grid'):
      feature_source.FeatureSource(_split(self.names), self.path, key='grid')

  def test_a_base_name_in_several_folders_matches_by_its_folders(self):
    # IAPR TC-12's layout: the extractor names 'NN/NNNN.jpg' under images/.
    path = os.path.join(os.path.dirname(self.path), 'folders.npz')
    names = ['01/7.jpg', '02/7.jpg', '02/8.jpg']
    np.savez(path, names=np.asarray(names),
             **{'global': np.arange(3, dtype=np.float32)[:, None]})
    source = feature_source.FeatureSource(
        _split(['02/7.jpg', '01/7.jpg', '02/8.jpg']), path)
    self.assertEqual([float(source.image(i)[0]) for i in range(3)],
                     [1.0, 0.0, 2.0])


if __name__ == '__main__':
  absltest.main()
