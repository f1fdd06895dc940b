"""The hashtag datasets: tag rules, stop words and the four builders."""

import json
import os
import tempfile

from absl.testing import absltest
import numpy as np
from PIL import Image

from capjax.data import hashtag_builders
from capjax.data import hashtags
from capjax.data import shapes_scenes
from capjax.data import sources
from capjax.data import stopwords

SHARED = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
if not os.path.isdir(SHARED):
  SHARED = '/work/shared/data'
FLICKR_1K = os.path.join(SHARED, 'flickr8k_1k')


def _write_jpeg(path, colour=(200, 30, 30)):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.new('RGB', (24, 20), colour).save(path, format='JPEG')


def _write(path, lines):
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(lines) + '\n')


class TagRulesTest(absltest.TestCase):

  def test_normalize_and_caption_drop_hash_case_and_repeats(self):
    self.assertEqual(hashtags.normalize_tag('#Red-Car!'), 'redcar')
    self.assertEqual(hashtags.as_caption(['#Love', 'love', '#', 'tbt_2020']),
                     'love tbt_2020')
    self.assertEqual(hashtags.with_hash('red circle'), '#red #circle')

  def test_shapes_tags_describe_the_scene_in_reading_order(self):
    scene = {'objects': [
        {'shape': 'square', 'colour': 'blue', 'size': 'large',
         'bbox': [40, 5, 60, 25]},
        {'shape': 'circle', 'colour': 'red', 'size': 'small',
         'bbox': [2, 30, 18, 46]},
        {'shape': 'circle', 'colour': 'blue', 'size': 'small',
         'bbox': [20, 2, 36, 18]}]}
    rng = np.random.default_rng(0)
    tags = hashtags.shapes_tags(scene, rng, noise_top=0.0)
    self.assertEqual(
        tags, ['red', 'circle', 'small', 'blue', 'square', 'large', 'three'])

  def test_noise_tags_follow_the_zipf_frequencies(self):
    scene = {'objects': [{'shape': 'circle', 'colour': 'red',
                          'size': 'small', 'bbox': [0, 0, 9, 9]}]}
    rng = np.random.default_rng(1)
    draws = 4000
    counts = np.zeros(len(hashtags.NOISE_TAGS))
    for _ in range(draws):
      tags = hashtags.shapes_tags(scene, rng, noise_top=0.6)
      counts += [t in tags for t in hashtags.NOISE_TAGS]
    expected = hashtags.noise_probabilities(len(counts), 0.6, 1.0)
    np.testing.assert_allclose(counts / draws, expected, atol=0.03)
    self.assertGreater(counts[0], 3 * counts[3])

  def test_caption_tags_keep_the_shared_content_words(self):
    captions = ['A black dog runs on the grass .',
                'Two dogs are running in the grass .',
                'The black dog is playing outside .',
                'A dog jumps .', 'a black and white dog']
    tags = hashtags.caption_tags(captions)
    self.assertEqual(tags, ['dog', 'black'])  # 'grass' only in 2 of 5
    self.assertEqual(hashtags.caption_tags(['the cat', 'a bird']), ['cat'])

  def test_builtin_stop_words_are_general_english(self):
    for word in ('the', 'a', 'and', 'is', 'of', "n't", 'with'):
      self.assertTrue(stopwords.is_stop_word(word, builtin_only=True), word)
    for word in ('dog', 'red', 'beach', 'running'):
      self.assertFalse(stopwords.is_stop_word(word, builtin_only=True), word)
    self.assertIn('the', stopwords.english())  # NLTK's or ours

  def test_split_of_is_stable_and_roughly_proportional(self):
    names = [f'instagram_dataset/x/image_{i}.jpg' for i in range(3000)]
    splits = [hashtags.split_of(n, (0.8, 0.1, 0.1)) for n in names]
    self.assertEqual(splits, [hashtags.split_of(n, (0.8, 0.1, 0.1))
                              for n in names])
    self.assertAlmostEqual(splits.count('train') / 3000, 0.8, delta=0.03)
    self.assertAlmostEqual(splits.count('test') / 3000, 0.1, delta=0.03)

  def test_tags_tsv_without_tab_is_named(self):
    with tempfile.TemporaryDirectory() as root:
      path = os.path.join(root, 'tags.tsv')
      _write(path, ['a.jpg\tsun sea', 'b.jpg sun'])
      with self.assertRaisesRegex(ValueError, r'tags\.tsv line 2'):
        hashtags.read_tags_tsv(path)


class BuildersTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    cls.root = cls._tmp.name

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def test_shapes_hashtags_tiny_tags_are_true_of_the_scene(self):
    data_dir = os.path.join(self.root, 'shapes_tfds')
    source = sources.load_source('shapes_hashtags/tiny', 'train',
                                 data_dir=data_dir)
    self.assertLen(source, 240)
    noise = 0
    for captions, scene in zip(source.captions, source.scenes):
      self.assertLen(captions, 1)
      tags = captions[0].split()
      objects = json.loads(scene)['objects']
      informative = {o[k] for o in objects for k in ('colour', 'shape', 'size')}
      informative.add(hashtags.COUNT_TAGS[len(objects)])
      self.assertEqual(set(tags) - set(hashtags.NOISE_TAGS), informative)
      self.assertLen(set(tags), len(tags))  # no tag twice
      noise += 'instagood' in tags
    self.assertBetween(noise / 240, 0.45, 0.75)
    image = source.image(0)
    self.assertEqual(image.shape, (64, 64, 3))
    self.assertIn(json.loads(source.scenes[0])['objects'][0]['shape'],
                  shapes_scenes.SHAPES)

  def test_flickr8k_hashtags_read_the_official_layout(self):
    builder = hashtag_builders.Flickr8kHashtags(
        data_dir=os.path.join(self.root, 'unused'))
    # The entries the builder would store (no image is read).
    # pylint: disable-next=protected-access
    entries = builder._split_entries(FLICKR_1K)
    self.assertEqual({k: len(v) for k, v in entries.items()},
                     {'train': 753, 'validation': 113, 'test': 125})
    stop = stopwords.english(builtin_only=True)
    for entry in entries['train']:
      self.assertLen(entry.captions, 1)
      tags = entry.captions[0].split()
      self.assertBetween(len(tags), 1, 10)
      self.assertFalse(set(tags) & stop)
    counts = {}
    for entry in entries['train']:
      for tag in entry.captions[0].split():
        counts[tag] = counts.get(tag, 0) + 1
    top = sorted(counts, key=counts.get, reverse=True)[:5]
    self.assertIn('dog', top)  # Flickr8k is full of dogs

  def test_harrison_layout_skips_and_counts_broken_images(self):
    manual = os.path.join(self.root, 'harrison')
    files = [f'instagram_dataset/{t}/image_{i}.jpg'
             for t in ('beach', 'dog') for i in range(1, 5)]
    for name in files[:2] + files[4:]:
      _write_jpeg(os.path.join(manual, name))
    with open(os.path.join(manual, files[3]), 'wb') as f:
      f.write(b'not a jpeg')  # files[2] is missing altogether
    tag_lines = ['beach sea #Summer', 'beach sun', 'beach love', 'beach',
                 'dog cute', 'dog puppy love', 'dog', 'dog cute']
    _write(os.path.join(manual, 'data_list.txt'), files)
    _write(os.path.join(manual, 'tag_list.txt'), tag_lines)
    _write(os.path.join(manual, 'vocab_index.txt'),
           ['beach 0', 'sea 1', 'summer 2', 'sun 3', 'dog 4', 'cute 5',
            'puppy 6'])  # 'love' is not in the vocabulary
    builder = sources.prepare('harrison', manual_dir=manual,
                              data_dir=os.path.join(self.root, 'h_tfds'))
    skipped = builder.info.metadata['skipped']
    self.assertEqual(sum(s['missing'] for s in skipped.values()), 1)
    self.assertEqual(sum(s['corrupt'] for s in skipped.values()), 1)
    found = {}
    for split in builder.info.splits:
      source = sources.load_source(
          'harrison', split, data_dir=os.path.join(self.root, 'h_tfds'),
          image_size=16)
      for image_id, captions in zip(source.image_ids, source.captions):
        found[int(image_id)] = captions[0]
        self.assertEqual(split, hashtags.split_of(files[image_id],
                                                  (0.8, 0.1, 0.1)))
    self.assertEqual(found, {0: 'beach sea summer', 1: 'beach sun',
                             4: 'dog cute', 5: 'dog puppy', 6: 'dog',
                             7: 'dog cute'})

  def test_harrison_lists_of_different_length_are_named(self):
    manual = os.path.join(self.root, 'harrison_bad')
    os.makedirs(manual)
    _write(os.path.join(manual, 'data_list.txt'), ['a.jpg', 'b.jpg'])
    _write(os.path.join(manual, 'tag_list.txt'), ['sun'])
    with self.assertRaisesRegex(ValueError, 'line-aligned'):
      hashtags.read_harrison(manual)

  def test_tag_folder_reads_tags_tsv(self):
    manual = os.path.join(self.root, 'folder')
    names = [f'photos/p{i}.jpg' for i in range(5)]
    for name in names:
      _write_jpeg(os.path.join(manual, name), colour=(10, 200, 10))
    _write(os.path.join(manual, 'tags.tsv'),
           [f'{n}\t#Green #leaf{i % 2}' for i, n in enumerate(names)]
           + ['photos/none.jpg\t', 'photos/lost.jpg\tlost'])
    data_dir = os.path.join(self.root, 'f_tfds')
    builder = sources.prepare('tag_folder', manual_dir=manual,
                              data_dir=data_dir)
    skipped = builder.info.metadata['skipped']
    self.assertEqual(sum(s['missing'] for s in skipped.values()), 1)
    captions = {}
    for split in builder.info.splits:
      source = sources.load_source('tag_folder', split, data_dir=data_dir,
                                   image_size=8)
      captions.update(zip(source.image_ids.tolist(),
                          [c[0] for c in source.captions]))
    self.assertEqual(captions, {i: f'green leaf{i % 2}' for i in range(5)})


if __name__ == '__main__':
  absltest.main()
