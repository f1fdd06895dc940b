"""IAPR TC-12: annotations, split lists and the iapr_tc12 builder."""

import os
import shutil
import tempfile
import zlib

from absl.testing import absltest
from PIL import Image

from capjax import config_checks
from capjax.data import flickr8k
from capjax.data import iapr_tc12
from capjax.data import pipeline
from capjax.data import sources
from configs.retrieval import flickr8k as retrieval_flickr8k

ENG = """<DOC>
<DOCNO>annotations/01/1000.eng</DOCNO>
<TITLE>Godchild Cristian</TITLE>
<DESCRIPTION>a dark-skinned boy wearing a knitted woolly hat; a grey
railing in the foreground; the caf\xe9 behind;</DESCRIPTION>
<NOTES></NOTES>
<IMAGE>images/01/1000.jpg</IMAGE>
</DOC>
"""


class IaprTc12Test(absltest.TestCase):

  def setUp(self):
    super().setUp()
    tmp = tempfile.TemporaryDirectory()
    self.addCleanup(tmp.cleanup)
    self.root = tmp.name
    folder = os.path.join(self.root, 'annotations_complete_eng', '01')
    os.makedirs(folder)
    with open(os.path.join(folder, '1000.eng'), 'w',
              encoding='latin-1') as f:
      f.write(ENG)
    with open(os.path.join(folder, '1001.eng'), 'w',
              encoding='latin-1') as f:
      f.write(ENG.replace('1000', '1001').replace('boy', 'girl'))

  def test_description_is_split_into_clauses_read_as_latin_1(self):
    annotations = iapr_tc12.read_annotations(self.root)
    first = annotations['01/1000']
    self.assertEqual(first.image, 'images/01/1000.jpg')
    self.assertEqual(first.clauses, (
        'a dark-skinned boy wearing a knitted woolly hat',
        'a grey railing in the foreground', 'the caf\xe9 behind'))
    self.assertIn('girl', annotations['01/1001'].clauses[0])

  def test_split_lists_in_every_spelling_and_a_missing_image(self):
    annotations = iapr_tc12.read_annotations(self.root)
    path = os.path.join(self.root, 'train.txt')
    with open(path, 'w') as f:
      f.write('images/01/1001.jpg\n01/1000\n1001\n')
    got = iapr_tc12.read_split_list(path, annotations)
    self.assertEqual([a.key for a in got], ['01/1001', '01/1000', '01/1001'])
    with open(path, 'w') as f:
      f.write('01/1000\n\n02/7\n')
    with self.assertRaisesRegex(ValueError, r'train.txt:3: .*02/7'):
      iapr_tc12.read_split_list(path, annotations)
    # The builder's reading: a few names without annotation stand without
    # clauses (skipped and counted); a list of mostly unknown names fails.
    with open(path, 'w') as f:
      f.write('01/1000\n01/1001\n02/7\n')
    got = iapr_tc12.read_split_list(path, annotations, missing_ok=True)
    self.assertEqual([(a.key, a.clauses) for a in got][2], ('02/7', ()))
    with open(path, 'w') as f:
      f.write('01/1000\n02/7\n02/8\n')
    with self.assertRaisesRegex(ValueError, r'train.txt:2: .*02/7.* 1 more'):
      iapr_tc12.read_split_list(path, annotations, missing_ok=True)

  def test_a_file_without_description_is_named(self):
    path = os.path.join(self.root, 'bad.eng')
    with open(path, 'w') as f:
      f.write('<DOC><IMAGE>images/01/9.jpg</IMAGE></DOC>')
    with self.assertRaisesRegex(ValueError, 'bad.eng: no <DESCRIPTION>'):
      iapr_tc12.read_annotation(path)

  def test_flickr30k_results_token_file_reads_like_flickr8k(self):
    # results_20130124.token has Flickr8k's `<file>.jpg#<k>\t<caption>`.
    path = os.path.join(self.root, 'results_20130124.token')
    with open(path, 'w') as f:
      f.write('1000092795.jpg#1\tTwo young guys .\n'
              '1000092795.jpg#0\tTwo men in green shirts .\n')
    self.assertEqual(flickr8k.read_token_file(path), {
        '1000092795.jpg': ['Two men in green shirts .', 'Two young guys .']})


def _eng(key, description):
  folder, number = key.split('/')
  return (f'<DOC>\n<DOCNO>annotations/{key}.eng</DOCNO>\n<TITLE>Photo '
          f'{number}</TITLE>\n<DESCRIPTION>{description}</DESCRIPTION>\n'
          '<NOTES></NOTES>\n<LOCATION>Quito, Ecuador</LOCATION>\n'
          '<DATE>April 2002</DATE>\n'
          f'<IMAGE>images/{folder}/{number}.jpg</IMAGE>\n'
          f'<THUMBNAIL>thumbnails/{folder}/{number}.jpg</THUMBNAIL>\n</DOC>\n')


# The release written by `_make_release`: key -> DESCRIPTION.
DESCRIPTIONS = {
    '01/1000': 'a boy with a hat; a grey railing;',
    '01/1001': 'a dark caf\xe9 with two tables; a man behind the bar;',
    '02/2000': 'a llama on a green meadow;',
    '02/2001': 'a white church; blue sky;',
    '02/2002': 'a street at night;',  # its image is missing
    '03/3000': '',  # no clauses: skipped and counted
}
# 04/4000 has neither annotation nor image (the release lacks a few).
TRAIN_LIST = ['01/1000', '01/1001', '02/2000', '02/2002', '03/3000',
              '04/4000']
TEST_LIST = ['02/2001']


def _make_release(root, lists=True):
  """IAPR TC-12 in its real layout, with (or without) the standard lists."""
  for key, description in DESCRIPTIONS.items():
    folder, number = key.split('/')
    for sub in ('images', 'annotations_complete_eng'):
      os.makedirs(os.path.join(root, sub, folder), exist_ok=True)
    with open(os.path.join(root, 'annotations_complete_eng', folder,
                           f'{number}.eng'), 'w', encoding='latin-1') as f:
      f.write(_eng(key, description))
    if key != '02/2002':
      Image.new('RGB', (24, 16), (int(number) % 256, 90, 40)).save(
          os.path.join(root, 'images', folder, f'{number}.jpg'))
  if lists:
    for split, keys in (('train', TRAIN_LIST), ('test', TEST_LIST)):
      with open(os.path.join(root, f'iaprtc12_{split}_list.txt'), 'w') as f:
        f.write(''.join(k + '\n' for k in keys))


def _first_by_crc(keys):
  return min(keys, key=lambda k: (zlib.crc32(k.encode()), k))


class IaprTc12BuilderTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.manual_dir = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.manual_dir)
    _make_release(cls.manual_dir)
    cls.data_dir = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.data_dir)
    cls.builder = sources.prepare('iapr_tc12', data_dir=cls.data_dir,
                                  manual_dir=cls.manual_dir)

  def _references(self, split):
    return pipeline.references(pipeline.load_source(
        'iapr_tc12', split, data_dir=self.data_dir, image_size=8))

  def test_lists_give_train_and_test_and_validation_is_carved_from_train(self):
    held = _first_by_crc(TRAIN_LIST)
    self.assertEqual(held, '01/1000')  # the layout below relies on it
    self.assertEqual(sorted(self._references('validation')), [1000])
    self.assertEqual(sorted(self._references('train')), [1001, 2000])
    self.assertEqual(sorted(self._references('test')), [2001])
    self.assertEqual(self.builder.info.metadata['skipped']['train'],
                     {'missing': 1, 'corrupt': 0, 'no_captions': 2})

  def test_description_clauses_are_the_captions_read_as_latin_1(self):
    self.assertEqual(self._references('train')[1001],
                     ['a dark caf\xe9 with two tables', 'a man behind the bar'])
    self.assertEqual(self._references('test')[2001],
                     ['a white church', 'blue sky'])

  def test_photos_and_file_names(self):
    source = pipeline.load_source('iapr_tc12', 'test', data_dir=self.data_dir,
                                  image_size=(4, 6))
    self.assertEqual(source.image(0).shape, (4, 6, 3))
    self.assertEqual(source.records[0]['file_name'].decode(),
                     os.path.join('images', '02', '2001.jpg'))

  def test_without_lists_test_and_validation_are_carved_deterministically(self):
    root = self.enter_context(tempfile.TemporaryDirectory())
    _make_release(root, lists=False)
    keys = sorted(DESCRIPTIONS)
    test_key = _first_by_crc(keys)  # 10% of 6 images: 1
    validation_key = _first_by_crc([k for k in keys if k != test_key])
    self.assertEqual((test_key, validation_key), ('01/1000', '02/2002'))
    splits = iapr_tc12.split_annotations(
        iapr_tc12.read_annotations(root), iapr_tc12.find_lists(root))
    self.assertEqual({s: [a.key for a in v] for s, v in splits.items()}, {
        'train': ['01/1001', '02/2000', '02/2001', '03/3000'],
        'validation': ['02/2002'], 'test': ['01/1000']})

  def test_a_validation_list_replaces_the_carved_one(self):
    root = self.enter_context(tempfile.TemporaryDirectory())
    _make_release(root)
    with open(os.path.join(root, 'iaprtc12_val_list.txt'), 'w') as f:
      f.write('02/2000\n')
    splits = iapr_tc12.split_annotations(
        iapr_tc12.read_annotations(root), iapr_tc12.find_lists(root))
    self.assertEqual([a.key for a in splits['validation']], ['02/2000'])
    self.assertEqual([a.key for a in splits['train']],
                     ['01/1000', '01/1001', '02/2002', '03/3000', '04/4000'])

  def test_full_train_config_keeps_all_of_train_and_has_no_validation(self):
    builder = sources.prepare('iapr_tc12/full_train', data_dir=self.data_dir,
                              manual_dir=self.manual_dir)
    self.assertEqual(
        {k: v.num_examples for k, v in builder.info.splits.items()},
        {'train': 3, 'test': 1})

  def test_image_ids_are_numbers_unless_a_number_repeats(self):
    self.assertEqual(iapr_tc12.image_ids(['01/1000', '02/7']),
                     {'01/1000': 1000, '02/7': 7})
    self.assertEqual(iapr_tc12.image_ids(['01/7', '02/7']),
                     {'01/7': 100_007, '02/7': 200_007})

  def test_a_config_naming_it_passes_the_checks(self):
    config = retrieval_flickr8k.get_config('tiny')
    config.dataset.name = 'iapr_tc12'
    config.dataset.manual_dir = self.manual_dir
    config_checks.check(config)
    config.dataset.builder_config = 'full_train'
    config_checks.check(config)
    config.dataset.builder_config = 'min256'
    with self.assertRaisesRegex(config_checks.ConfigError,
                                "config 'min256' of dataset 'iapr_tc12'"):
      config_checks.check(config)


class IaprTc12ErrorsTest(absltest.TestCase):

  def _error(self, root, error=FileNotFoundError):
    with self.assertRaises(error) as raised:
      sources.prepare('iapr_tc12', manual_dir=root, data_dir=self.enter_context(
          tempfile.TemporaryDirectory()))
    message = str(raised.exception)
    self.assertNotIn('\n', message)
    return message

  def setUp(self):
    super().setUp()
    self.root = self.enter_context(tempfile.TemporaryDirectory())
    _make_release(self.root)

  def test_missing_manual_dir(self):
    with self.assertRaisesRegex(FileNotFoundError, 'pass manual_dir'):
      sources.prepare('iapr_tc12', data_dir=self.root)

  def test_missing_annotation_folder_is_named(self):
    shutil.rmtree(os.path.join(self.root, 'annotations_complete_eng'))
    self.assertIn('no annotations_complete_eng/ folder', self._error(self.root))

  def test_missing_image_folder_is_named(self):
    shutil.rmtree(os.path.join(self.root, 'images'))
    self.assertIn('no images/ folder', self._error(self.root))

  def test_one_list_without_the_other_is_named(self):
    os.remove(os.path.join(self.root, 'iaprtc12_test_list.txt'))
    self.assertIn('no iaprtc12_test_list.txt', self._error(self.root))

  def test_a_file_that_is_not_an_annotation_is_named(self):
    with open(os.path.join(self.root, 'annotations_complete_eng', '01',
                           '9.eng'), 'w') as f:
      f.write('<html>not an annotation</html>')
    self.assertIn('9.eng: no <IMAGE> element',
                  self._error(self.root, ValueError))


if __name__ == '__main__':
  absltest.main()
