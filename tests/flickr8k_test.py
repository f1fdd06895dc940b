"""Tests of the real-photo builders: Flickr8k files and Karpathy JSON."""

import json
import logging
import os
import shutil
import tempfile

from absl.testing import absltest
import numpy as np
from PIL import Image

from capjax.data import flickr8k
from capjax.data import images
from capjax.data import pipeline
from capjax.data import sources
from capjax.data import vocab as vocab_lib

SHARED = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
if not os.path.isdir(SHARED):
  SHARED = '/work/shared/data'
FLICKR_1K = os.path.join(SHARED, 'flickr8k_1k')
FLICKR_TEXT = os.path.join(SHARED, 'flickr8k_text')


def _tempdir(test):
  """A temporary folder removed when `test` ends."""
  return test.enterContext(tempfile.TemporaryDirectory())


class _WarningCapture(logging.Handler):
  """Collects the messages of warnings logged while it is attached."""

  def __init__(self):
    super().__init__(logging.WARNING)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


def _write_jpeg(path, size, mode='RGB', colour=(200, 30, 30)):
  value = colour if mode == 'RGB' else colour[0]
  Image.new(mode, size, value).save(path, format='JPEG', quality=95)


def _make_flickr_layout(root):
  """A small Flickr8k release with every kind of defect the loader handles.

  train: 101_a (good), 102_b (grey JPEG), 103_c (truncated JPEG),
    104_d (missing file), 105_e (not an image), 106_f (no captions);
  validation: 201_a; test: 301_a (large, 400x300).
  """
  image_dir = os.path.join(root, 'Flicker8k_Dataset')
  os.makedirs(image_dir)
  _write_jpeg(os.path.join(image_dir, '101_a.jpg'), (40, 30))
  _write_jpeg(os.path.join(image_dir, '102_b.jpg'), (30, 50), mode='L')
  _write_jpeg(os.path.join(image_dir, '106_f.jpg'), (30, 30))
  _write_jpeg(os.path.join(image_dir, '201_a.jpg'), (32, 32),
              colour=(0, 0, 255))
  _write_jpeg(os.path.join(image_dir, '301_a.jpg'), (400, 300))
  _write_jpeg(os.path.join(image_dir, 'full.jpg'), (64, 64))
  with open(os.path.join(image_dir, 'full.jpg'), 'rb') as f:
    data = f.read()
  with open(os.path.join(image_dir, '103_c.jpg'), 'wb') as f:
    f.write(data[:len(data) // 2])
  with open(os.path.join(image_dir, '105_e.jpg'), 'wb') as f:
    f.write(b'this is not a jpeg at all')
  lines = []
  for name in ('101_a', '102_b', '103_c', '104_d', '105_e', '201_a', '301_a'):
    lines += [f'{name}.jpg#{k}\tCaption {k} of {name} .' for k in range(5)]
  lines.insert(3, '999_z.jpg.1#0\tA caption with a bad key .')
  lines.insert(4, 'no tab on this line')
  with open(os.path.join(root, 'Flickr8k.token.txt'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  splits = {'trainImages': ['101_a', '102_b', '103_c', '104_d', '105_e',
                            '106_f'],
            'devImages': ['201_a'], 'testImages': ['301_a']}
  for split, names in splits.items():
    with open(os.path.join(root, f'Flickr_8k.{split}.txt'), 'w') as f:
      f.write(''.join(f'{n}.jpg\n' for n in names))


class Flickr8kGeneratedTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.manual_dir = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.manual_dir)
    _make_flickr_layout(cls.manual_dir)
    cls.data_dir = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.data_dir)
    capture = _WarningCapture()
    logging.getLogger('absl').addHandler(capture)
    try:
      cls.builder = sources.prepare('flickr8k', data_dir=cls.data_dir,
                                    manual_dir=cls.manual_dir)
    finally:
      logging.getLogger('absl').removeHandler(capture)
    cls.warnings = '\n'.join(capture.messages)

  def test_bad_images_are_skipped_and_counted(self):
    self.assertEqual(self.builder.info.splits['train'].num_examples, 2)
    self.assertEqual(
        self.builder.info.metadata['skipped'],
        {'train': {'missing': 1, 'corrupt': 2, 'no_captions': 1},
         'validation': {'missing': 0, 'corrupt': 0, 'no_captions': 0},
         'test': {'missing': 0, 'corrupt': 0, 'no_captions': 0}})

  def test_skipped_counts_survive_reloading(self):
    reloaded = sources.prepare('flickr8k', data_dir=self.data_dir)
    self.assertEqual(reloaded.info.metadata['skipped']['train'],
                     {'missing': 1, 'corrupt': 2, 'no_captions': 1})

  def test_each_skipped_file_is_named_in_a_warning(self):
    for name in ('103_c.jpg', '104_d.jpg', '105_e.jpg', '106_f.jpg',
                 '999_z.jpg.1#0', 'no tab on this line'):
      self.assertIn(name, self.warnings)

  def test_examples_carry_ids_captions_and_file_names(self):
    source = pipeline.load_source('flickr8k', 'train', data_dir=self.data_dir,
                                  image_size=16)
    self.assertEqual(sorted(pipeline.references(source)), [101, 102])
    self.assertEqual(pipeline.references(source)[101],
                     [f'Caption {k} of 101_a .' for k in range(5)])
    records = {int(r['image_id']): r for r in source.records}
    self.assertEqual(records[102]['file_name'].decode(),
                     os.path.join('Flicker8k_Dataset', '102_b.jpg'))

  def test_images_decode_to_rgb_of_the_requested_size(self):
    source = pipeline.load_source('flickr8k', 'train', data_dir=self.data_dir,
                                  image_size=(12, 20))
    index = list(source.image_ids).index(101)
    image = source.image(index)
    self.assertEqual((image.shape, image.dtype), ((12, 20, 3), np.uint8))
    np.testing.assert_allclose(image.mean(axis=(0, 1)), (200, 30, 30), atol=4)
    grey = source.image(list(source.image_ids).index(102))
    self.assertEqual(grey.shape, (12, 20, 3))

  def test_min256_config_shrinks_large_photos_when_preparing(self):
    builder = sources.prepare('flickr8k/min256', data_dir=self.data_dir,
                              manual_dir=self.manual_dir)
    record = builder.as_data_source('test')[0]
    self.assertEqual(record['image'].shape, (256, 341, 3))

  def test_eval_pipeline_over_photos(self):
    source = pipeline.load_source('flickr8k', 'train', data_dir=self.data_dir,
                                  image_size=16)
    vocab = vocab_lib.Vocab.build(pipeline.all_captions(source))
    batches = list(pipeline.eval_batches(source, vocab, batch_size=4,
                                         max_len=8))
    self.assertLen(batches, 1)
    np.testing.assert_array_equal(batches[0]['mask'], [1, 1, 0, 0])
    self.assertEqual(batches[0]['image'].shape, (4, 16, 16, 3))


class Flickr8kErrorsTest(absltest.TestCase):

  def _error(self, **kwargs):
    with self.assertRaises(FileNotFoundError) as raised:
      sources.prepare('flickr8k', data_dir=_tempdir(self),
                      **kwargs)
    message = str(raised.exception)
    self.assertNotIn('\n', message)
    return message

  def test_missing_manual_dir_argument(self):
    self.assertIn('pass manual_dir', self._error())

  def test_manual_dir_that_does_not_exist(self):
    self.assertIn('/no/such/folder', self._error(manual_dir='/no/such/folder'))

  def test_missing_token_file_is_named(self):
    root = _tempdir(self)
    _make_flickr_layout(root)
    os.remove(os.path.join(root, 'Flickr8k.token.txt'))
    self.assertIn('Flickr8k.token.txt', self._error(manual_dir=root))

  def test_missing_photo_folder_is_named(self):
    root = _tempdir(self)
    _make_flickr_layout(root)
    shutil.rmtree(os.path.join(root, 'Flicker8k_Dataset'))
    self.assertIn('photo folder', self._error(manual_dir=root))


class Flickr8kRealFilesTest(absltest.TestCase):

  def test_token_file_of_the_release_drops_the_bad_key(self):
    with self.assertLogs(logger='absl', level='WARNING') as logs:
      captions = flickr8k.read_token_file(
          os.path.join(FLICKR_TEXT, 'Flickr8k.token.txt'))
    self.assertLen(captions, 8091)
    self.assertEqual({len(c) for c in captions.values()}, {5})
    self.assertNotIn('2258277193_586949ec62.jpg.1', captions)
    self.assertIn('2258277193_586949ec62.jpg.1#0', '\n'.join(logs.output))

  def test_real_photos_prepare_into_the_official_splits(self):
    data_dir = _tempdir(self)
    builder = sources.prepare('flickr8k', data_dir=data_dir,
                              manual_dir=FLICKR_1K)
    splits = builder.info.splits
    self.assertEqual({k: splits[k].num_examples for k in splits},
                     {'train': 753, 'validation': 113, 'test': 125})
    test = pipeline.load_source('flickr8k', 'test', data_dir=data_dir,
                                image_size=32)
    references = pipeline.references(test)
    with open(os.path.join(FLICKR_1K, 'Flickr_8k.testImages.txt')) as f:
      names = f.read().split()
    self.assertCountEqual(references, [int(n.split('_')[0]) for n in names])
    token_captions = flickr8k.read_token_file(
        os.path.join(FLICKR_1K, 'Flickr8k.token.txt'))
    self.assertEqual(references[int(names[0].split('_')[0])],
                     token_captions[names[0]])
    expected = images.decode(
        open(os.path.join(FLICKR_1K, 'images', names[0]), 'rb').read(),
        (32, 32))
    index = list(test.image_ids).index(int(names[0].split('_')[0]))
    np.testing.assert_array_equal(test.image(index), expected)


class KarpathyTest(absltest.TestCase):

  def test_karpathy_json_splits_ids_and_skipped_photos(self):
    root = _tempdir(self)
    os.makedirs(os.path.join(root, 'val2014'))
    entries = []
    splits = ['train', 'train', 'restval', 'val', 'test', 'train', 'train']
    for i, split in enumerate(splits):
      name = f'COCO_val2014_{i:012d}.jpg'
      if i != 5:  # Photo 5 is missing.
        _write_jpeg(os.path.join(root, 'val2014', name), (20 + i, 16))
      entries.append({
          'filepath': 'val2014', 'filename': name, 'split': split,
          'imgid': i, 'cocoid': 1000 + i,
          'sentences': [{'raw': f'Photo {i} caption {k}.', 'tokens': []}
                        for k in range(5 + (i == 0))]})
    # The last photo exists but its only sentence is empty.
    entries[-1]['sentences'] = [{'raw': '', 'tokens': []}]
    with open(os.path.join(root, 'dataset_coco.json'), 'w') as f:
      json.dump({'images': entries, 'dataset': 'coco'}, f)
    data_dir = _tempdir(self)
    builder = sources.prepare('coco', data_dir=data_dir, manual_dir=root)
    self.assertEqual(
        {k: v.num_examples for k, v in builder.info.splits.items()},
        {'train': 3, 'validation': 1, 'test': 1})
    self.assertEqual(builder.info.metadata['skipped']['train'],
                     {'missing': 1, 'corrupt': 0, 'no_captions': 1})
    train = pipeline.load_source('coco', 'train', data_dir=data_dir,
                                 image_size=8)
    references = pipeline.references(train)
    self.assertEqual(sorted(references), [1000, 1001, 1002])
    self.assertLen(references[1000], 6)
    self.assertEqual(references[1002][1], 'Photo 2 caption 1.')

  def test_karpathy_json_with_unknown_split_is_named(self):
    root = _tempdir(self)
    with open(os.path.join(root, 'dataset_flickr30k.json'), 'w') as f:
      json.dump({'images': [{'filename': 'x.jpg', 'split': 'holdout',
                             'imgid': 0, 'sentences': []}]}, f)
    with self.assertRaisesRegex(ValueError, "dataset_flickr30k.json: image 0 "
                                "has unknown split 'holdout'"):
      sources.prepare('flickr30k', data_dir=_tempdir(self),
                      manual_dir=root)


if __name__ == '__main__':
  absltest.main()
