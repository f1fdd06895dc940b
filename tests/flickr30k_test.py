"""Flickr30k from results_20130124.token: the flickr30k_token builder."""

import json
import os
import tempfile
import zlib

from absl.testing import absltest
from PIL import Image

from capjax import config_checks
from capjax.data import flickr30k
from capjax.data import pipeline
from capjax.data import sources
from configs.retrieval import flickr8k as retrieval_flickr8k

NAMES = [f'{1000092795 + 7 * i}.jpg' for i in range(7)]
# A custom variant: 2 test and 2 validation images of the 7.
SMALL = flickr30k.Flickr30kConfig(name='heldout2', heldout=2)


def _make_release(root):
  """7 photos with 2 captions each; the last photo file is missing."""
  os.makedirs(os.path.join(root, 'flickr30k-images'))
  lines = []
  for i, name in enumerate(NAMES):
    if i < len(NAMES) - 1:
      Image.new('RGB', (10, 6), (30 * i, 0, 0)).save(
          os.path.join(root, 'flickr30k-images', name))
    lines += [f'{name}#1\tPhoto {i} , second caption .',
              f'{name}#0\tTwo young guys with shaggy hair {i} .']
  lines.append('1000092795.jpg.1#0\tA line with a bad key .')
  with open(os.path.join(root, 'results_20130124.token'), 'w') as f:
    f.write('\n'.join(lines) + '\n')


def _splits(builder):
  return {s: v.num_examples for s, v in builder.info.splits.items()}


class Flickr30kTokenTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.enter_context(tempfile.TemporaryDirectory())
    _make_release(self.root)
    self.data_dir = self.enter_context(tempfile.TemporaryDirectory())

  def test_without_karpathy_json_the_split_is_by_crc32_order(self):
    builder = sources.prepare('flickr30k_token', builder_config=SMALL,
                              data_dir=self.data_dir, manual_dir=self.root)
    order = sorted(NAMES, key=lambda n: zlib.crc32(n.encode()))
    want = {'test': order[:2], 'validation': order[2:4], 'train': order[4:]}
    for split, names in want.items():
      source = pipeline.load_source('flickr30k_token', split,
                                    builder_config=SMALL,
                                    data_dir=self.data_dir, image_size=4)
      present = [n for n in names if n != NAMES[-1]]
      self.assertCountEqual(source.image_ids,
                            [int(n.split('.')[0]) for n in present])
    missing = {s: c['missing'] for s, c in
               builder.info.metadata['skipped'].items()}
    self.assertEqual(sum(missing.values()), 1)
    split_of_last = next(s for s, n in want.items() if NAMES[-1] in n)
    self.assertEqual(missing[split_of_last], 1)

  def test_captions_come_from_the_token_file_in_order(self):
    sources.prepare('flickr30k_token', builder_config=SMALL,
                    data_dir=self.data_dir, manual_dir=self.root)
    references = {}
    for split in ('train', 'validation', 'test'):
      references.update(pipeline.references(pipeline.load_source(
          'flickr30k_token', split, builder_config=SMALL,
          data_dir=self.data_dir, image_size=4)))
    self.assertEqual(references[1000092795],
                     ['Two young guys with shaggy hair 0 .',
                      'Photo 0 , second caption .'])

  def test_karpathy_json_gives_the_split_when_present(self):
    splits = ['train', 'restval', 'val', 'test', 'test', 'train']
    with open(os.path.join(self.root, 'dataset_flickr30k.json'), 'w') as f:
      json.dump({'images': [
          {'filename': n, 'split': s, 'imgid': i, 'sentences': []}
          for i, (n, s) in enumerate(zip(NAMES, splits))]}, f)
    builder = sources.prepare('flickr30k_token', data_dir=self.data_dir,
                              manual_dir=self.root)
    self.assertEqual(_splits(builder),
                     {'train': 3, 'validation': 1, 'test': 2})
    test = pipeline.load_source('flickr30k_token', 'test',
                                data_dir=self.data_dir, image_size=4)
    self.assertCountEqual(test.image_ids, [1000092816, 1000092823])

  def test_too_few_images_for_the_default_heldout_is_named(self):
    with self.assertRaisesRegex(ValueError, r'^flickr30k_token: 7 captioned '
                                r'images cannot give 1000 test .*$'):
      sources.prepare('flickr30k_token', data_dir=self.data_dir,
                      manual_dir=self.root)

  def test_missing_token_file_and_photo_folder_are_named(self):
    os.remove(os.path.join(self.root, 'results_20130124.token'))
    with self.assertRaisesRegex(FileNotFoundError,
                                r'^flickr30k_token: no results_20130124.token '
                                r'in [^\n]*$'):
      sources.prepare('flickr30k_token', data_dir=self.data_dir,
                      manual_dir=self.root)
    other = self.enter_context(tempfile.TemporaryDirectory())
    with open(os.path.join(other, 'results_20130124.token'), 'w') as f:
      f.write('1.jpg#0\tA caption .\n')
    with self.assertRaisesRegex(FileNotFoundError,
                                r'^flickr30k_token: no photo folder in '
                                r'[^\n]*$'):
      sources.prepare('flickr30k_token', data_dir=self.data_dir,
                      manual_dir=other)

  def test_a_config_naming_it_passes_the_checks(self):
    config = retrieval_flickr8k.get_config('tiny')
    config.dataset.name = 'flickr30k_token'
    config.dataset.manual_dir = self.root
    config_checks.check(config)
    config.dataset.builder_config = 'min256'
    config_checks.check(config)
    config.dataset.name = 'flickr30k_tokens'
    with self.assertRaisesRegex(config_checks.ConfigError,
                                "Unknown dataset 'flickr30k_tokens'"):
      config_checks.check(config)


if __name__ == '__main__':
  absltest.main()
