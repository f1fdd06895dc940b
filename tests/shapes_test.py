"""Tests of the shapes dataset: scenes, captions, judge, TFDS builder."""

import io
import json
import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from capjax.data import shapes
from capjax.data import shapes_captions
from capjax.data import shapes_scenes
from capjax.data import sources

TINY = shapes.CONFIGS['tiny']


def _obj(shape, colour, size, bbox):
  return {'shape': shape, 'colour': colour, 'size': size, 'bbox': bbox}


# A small red circle on the left, a large blue square on the right, level.
TWO = {'width': 64, 'height': 64, 'relation_margin': 3.0, 'objects': [
    _obj('circle', 'red', 'small', [4, 20, 19, 35]),
    _obj('square', 'blue', 'large', [30, 15, 56, 41]),
]}
# Two circles (red above, blue below) and a green star to their right.
THREE = {'width': 64, 'height': 64, 'relation_margin': 3.0, 'objects': [
    _obj('circle', 'red', 'small', [4, 4, 19, 19]),
    _obj('circle', 'blue', 'small', [4, 40, 19, 55]),
    _obj('star', 'green', 'large', [30, 20, 56, 46]),
]}


def _scenes(count, seed=0, **kwargs):
  return [shapes_scenes.sample_scene(np.random.default_rng([seed, i]),
                                     **kwargs) for i in range(count)]


class ScenesTest(absltest.TestCase):

  def test_scene_is_a_pure_function_of_the_rng_seed(self):
    self.assertEqual(_scenes(5, seed=3), _scenes(5, seed=3))
    self.assertNotEqual(_scenes(5, seed=3), _scenes(5, seed=4))

  def test_objects_have_the_promised_sizes(self):
    for scene in _scenes(300):
      for obj in scene['objects']:
        x0, y0, x1, y1 = obj['bbox']
        self.assertAlmostEqual(x1 - x0, y1 - y0, places=2)
        low, high = {'small': (14, 16), 'large': (24, 27)}[obj['size']]
        self.assertBetween(x1 - x0, low - 0.01, high + 0.01)
        self.assertGreaterEqual(min(x0, y0), 1 - 0.01)
        self.assertLessEqual(max(x1, y1), 63 + 0.01)

  def test_every_pair_is_apart_and_clear_cut_on_each_axis(self):
    for scene in _scenes(300):
      objects = scene['objects']
      for i, a in enumerate(objects):
        for b in objects[i + 1:]:
          gaps = [max(b['bbox'][k] - a['bbox'][k + 2],
                      a['bbox'][k] - b['bbox'][k + 2]) for k in (0, 1)]
          self.assertGreaterEqual(max(gaps), 3.0)  # Apart on some axis.
          for gap in gaps:
            self.assertFalse(-3.0 < gap < 3.0, gaps)
          self.assertTrue(shapes_scenes.true_relations(a, b, 3.0))

  def test_scenes_cover_every_shape_colour_size_and_count(self):
    scenes = _scenes(400)
    objects = [o for s in scenes for o in s['objects']]
    self.assertEqual({o['shape'] for o in objects}, set(shapes_scenes.SHAPES))
    self.assertEqual({o['colour'] for o in objects},
                     set(shapes_scenes.COLOURS))
    self.assertEqual({o['size'] for o in objects}, {'small', 'large'})
    self.assertEqual({len(s['objects']) for s in scenes}, {1, 2, 3})

  def test_no_two_objects_of_a_scene_are_identical(self):
    for scene in _scenes(300):
      kinds = [(o['shape'], o['colour'], o['size']) for o in scene['objects']]
      self.assertLen(set(kinds), len(kinds))

  def test_relation_holds_exactly_from_the_margin(self):
    a, b = [0, 0, 10, 10], [13, 0, 23, 10]
    self.assertTrue(shapes_scenes.relation_holds('left', a, b, 3.0))
    self.assertTrue(shapes_scenes.relation_holds('right', b, a, 3.0))
    self.assertFalse(shapes_scenes.relation_holds('left', a, b, 3.5))
    self.assertFalse(shapes_scenes.relation_holds('above', a, b, 0.0))
    c = [0, 14, 10, 24]
    self.assertTrue(shapes_scenes.relation_holds('above', a, c, 3.0))
    self.assertTrue(shapes_scenes.relation_holds('below', c, a, 3.0))

  def test_render_draws_each_object_in_its_colour_inside_its_box(self):
    scene = TWO
    image = shapes_scenes.render(scene, np.random.default_rng(0))
    self.assertEqual(image.shape, (64, 64, 3))
    self.assertEqual(image.dtype, np.uint8)
    for obj in scene['objects']:
      x0, y0, x1, y1 = obj['bbox']
      centre = image[int((y0 + y1) / 2), int((x0 + x1) / 2)].astype(int)
      expected = np.array(shapes_scenes.COLOURS[obj['colour']])
      self.assertLess(np.abs(centre - expected).max(), 25)
    background = image[58:62, 2:6].astype(int)  # No object there.
    self.assertLess(background.max(), 100)


class CaptionGenerationTest(absltest.TestCase):

  def test_every_generated_caption_is_correct_for_its_scene(self):
    for i, scene in enumerate(_scenes(400, seed=7)):
      captions = shapes_captions.generate_captions(
          scene, np.random.default_rng(i))
      self.assertLen(captions, 5)
      for caption in captions:
        self.assertTrue(shapes.caption_is_correct(caption, scene),
                        f'{caption!r} for {scene}')

  def test_captions_of_multi_object_scenes_are_distinct(self):
    for i, scene in enumerate(_scenes(100, seed=8, min_objects=2)):
      captions = shapes_captions.generate_captions(
          scene, np.random.default_rng(i))
      self.assertLen(set(captions), 5)

  def test_a_caption_mentions_every_object(self):
    for i, scene in enumerate(_scenes(100, seed=9)):
      for caption in shapes_captions.generate_captions(
          scene, np.random.default_rng(i)):
        statement = shapes_captions.parse(caption)
        new = [m for m in statement.mentions if not m.definite]
        self.assertLen(new, len(scene['objects']))

  def test_captions_use_several_templates(self):
    scenes = _scenes(200, seed=10)
    captions = [c for i, s in enumerate(scenes) for c in
                shapes_captions.generate_captions(s, np.random.default_rng(i))]
    starts = {c.split()[0] for c in captions}
    self.assertContainsSubset({'a', 'an', 'there', 'one', 'two', 'three'},
                              starts)
    self.assertTrue(any(' the ' in c for c in captions))
    self.assertTrue(any(' its ' in c for c in captions))

  def test_reading_order_mentions_objects_left_to_right(self):
    for i, scene in enumerate(_scenes(100, seed=12, min_objects=2)):
      expected = [(o['colour'], o['shape'])
                  for o in shapes_captions.reading_order(scene['objects'])]
      for caption in shapes_captions.generate_captions(
          scene, np.random.default_rng(i), order='reading'):
        self.assertTrue(shapes.caption_is_correct(caption, scene), caption)
        mentions = [m for m in shapes_captions.parse(caption).mentions
                    if not m.definite]
        self.assertEqual([(m.colour, m.shape) for m in mentions], expected,
                         caption)

  def test_random_order_mentions_objects_in_several_orders(self):
    firsts = set()
    scene = _scenes(1, seed=13, min_objects=3)[0]
    for i in range(20):
      for caption in shapes_captions.generate_captions(
          scene, np.random.default_rng(i), order='random'):
        first = shapes_captions.parse(caption).mentions[0]
        firsts.add((first.colour, first.shape))
    self.assertLen(firsts, 3)

  def test_allowed_templates_are_the_only_ones_used(self):
    numbers = ('one', 'two', 'three')
    for i, scene in enumerate(_scenes(100, seed=14, min_objects=2)):
      rng = np.random.default_rng(i)
      for caption in shapes_captions.generate_captions(
          scene, rng, allowed=('plain',)):
        self.assertFalse(caption.startswith(('there',) + numbers), caption)
      for caption in shapes_captions.generate_captions(
          scene, rng, allowed=('count',)):
        self.assertTrue(caption.startswith(numbers), caption)

  def test_default_config_draws_its_four_shapes_at_its_sizes(self):
    config = shapes.CONFIGS['default']
    examples = [shapes.generate_example(config, 'train', i) for i in range(60)]
    objects = [o for e in examples for o in e['scene']['objects']]
    self.assertEqual({o['shape'] for o in objects}, set(config.shapes))
    for obj in objects:
      low, high = (config.small_side if obj['size'] == 'small'
                   else config.large_side)
      side = obj['bbox'][2] - obj['bbox'][0]
      self.assertBetween(side, low - 1e-3, high + 1e-3)

  def test_unknown_shape_is_refused_by_name(self):
    with self.assertRaisesRegex(ValueError, 'hexagon'):
      shapes_scenes.sample_scene(np.random.default_rng(0),
                                 shapes=('circle', 'hexagon'))

  def test_captions_are_correct_only_for_their_own_scene(self):
    wrong = 0
    scenes = _scenes(100, seed=11)
    for i, scene in enumerate(scenes):
      other = scenes[(i + 1) % len(scenes)]
      for caption in shapes_captions.generate_captions(
          scene, np.random.default_rng(i)):
        wrong += shapes.caption_is_correct(caption, other)
    self.assertLess(wrong, 10)  # Only an unlucky lone object can match.


class CaptionIsCorrectTest(parameterized.TestCase):

  @parameterized.parameters(
      'a small red circle to the left of a large blue square',
      'a red circle to the left of a blue square',
      'there is a large blue square and a small red circle on its left',
      'a large blue square and a small red circle to its left',
      'a blue square and a red circle to the left of it',
      'a large blue square to the right of a small red circle',
      'two shapes : a small red circle to the left of a large blue square',
      'A small red circle, to the left of a large blue square.',
      'a circle to the left of a square',
      'a small red circle and a large blue square',
  )
  def test_true_caption_of_two_objects(self, caption):
    self.assertTrue(shapes.caption_is_correct(caption, TWO))

  @parameterized.named_parameters(
      ('colour', 'a small green circle to the left of a large blue square'),
      ('shape', 'a small red star to the left of a large blue square'),
      ('size', 'a large red circle to the left of a large blue square'),
      ('relation', 'a small red circle to the right of a large blue square'),
      ('vertical', 'a small red circle above a large blue square'),
      ('pronoun_relation',
       'there is a large blue square and a small red circle on its right'),
      ('missing_object', 'a small red circle'),
      ('extra_object', 'a small red circle to the left of a large blue square'
       ' and a green star below it'),
      ('duplicate_mention', 'a small red circle to the left of a large blue '
       'square and a red circle'),
      ('trailing_garbage',
       'a small red circle to the left of a large blue square xyz'),
      ('trailing_noun', 'a small red circle to the left of a large blue '
       'square square'),
      ('empty', ''),
      ('blank', '   '),
      ('punctuation_only', '.'),
      ('wrong_count', 'three shapes : a red circle to the left of a blue '
       'square'),
      ('it_without_antecedent', 'a red circle to the left of it and a blue '
       'square'),
      ('definite_without_entity', 'the red circle to the left of a blue '
       'square'),
      ('self_relation', 'a red circle to the left of the circle and a blue '
       'square'),
      ('unfinished_relation', 'a red circle to the left of'),
      ('no_article', 'red circle to the left of a blue square'),
      ('there_without_verb', 'there a red circle to the left of a blue '
       'square'),
      ('bad_pronoun_form', 'a blue square and a red circle on it left'),
  )
  def test_false_caption_of_two_objects(self, caption):
    self.assertFalse(shapes.caption_is_correct(caption, TWO))

  def test_definite_reference_resolves_to_the_unique_fitting_entity(self):
    good = ('a red circle above a blue circle and a green star to the right '
            'of the blue circle')
    self.assertTrue(shapes.caption_is_correct(good, THREE))
    ambiguous = ('a red circle above a blue circle and a green star to the '
                 'right of the circle')
    self.assertFalse(shapes.caption_is_correct(ambiguous, THREE))
    wrong = ('a red circle above a blue circle and a green star to the left '
             'of the blue circle')
    self.assertFalse(shapes.caption_is_correct(wrong, THREE))

  def test_relation_attaches_to_the_most_recent_noun_phrase(self):
    # The blue circle is below the red one and left of the star.
    chain = 'a red circle above a blue circle to the left of a green star'
    self.assertTrue(shapes.caption_is_correct(chain, THREE))
    broken = 'a blue circle below a red circle below a green star'
    self.assertFalse(shapes.caption_is_correct(broken, THREE))

  def test_it_refers_to_the_mention_just_before_the_subject(self):
    caption = ('there is a red circle and a blue circle below it and a green '
               'star to its right')
    self.assertTrue(shapes.caption_is_correct(caption, THREE))
    # "its" = the blue circle: the star is not below it.
    caption = ('there is a red circle and a blue circle below it and a green '
               'star below it')
    self.assertFalse(shapes.caption_is_correct(caption, THREE))

  def test_random_word_sequences_are_judged_without_error(self):
    words = ('a an the there is are and it its on to of left right above '
             'below small large one two three shapes shape red blue circle '
             'square star xyz').split()
    rng = np.random.default_rng(0)
    accepted = 0
    for _ in range(2000):
      caption = ' '.join(rng.choice(words, size=rng.integers(0, 14)))
      accepted += shapes.caption_is_correct(caption, TWO)
    self.assertLess(accepted, 5)

  def test_one_word_edits_of_a_true_caption_are_false(self):
    original = 'a small red circle to the left of a large blue square'
    words = original.split()
    replacements = ['green', 'star', 'large', 'small', 'right', 'above',
                    'the', 'an', 'xyz', 'circle', 'it']
    accepted = set()
    for position in range(len(words)):
      for replacement in replacements:
        caption = ' '.join(
            words[:position] + [replacement] + words[position + 1:])
        if shapes.caption_is_correct(caption, TWO):
          accepted.add(caption)
    # Only unchanged captions and the article 'an' (not judged) survive.
    self.assertEqual(accepted, {
        original,
        'an small red circle to the left of a large blue square',
        'a small red circle to the left of an large blue square'})

  def test_scene_may_be_json_text_or_bytes(self):
    caption = 'a small red circle to the left of a large blue square'
    self.assertTrue(shapes.caption_is_correct(caption, json.dumps(TWO)))
    self.assertTrue(shapes.caption_is_correct(
        caption, json.dumps(TWO).encode()))

  def test_caption_accuracy_averages_the_judge(self):
    scenes = {1: TWO, 2: THREE}
    captions = {1: 'a red circle to the left of a blue square',
                2: 'a red circle'}
    self.assertEqual(shapes.caption_accuracy(captions, scenes), 0.5)
    with self.assertRaisesRegex(KeyError, '3'):
      shapes.caption_accuracy({3: 'a red circle'}, scenes)


class StalePreparationTest(absltest.TestCase):

  def test_a_killed_preparation_leaves_nothing_behind_once_rerun(self):
    data_dir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, data_dir)
    config_dir = os.path.join(data_dir, 'shapes', 'tiny')
    # What TFDS leaves when the process is killed while preparing.
    stale = os.path.join(config_dir, 'incomplete.Q7X2K9_1.1.0')
    os.makedirs(os.path.join(stale, 'shapes-train.array_record-00000-of-00001'
                             '.incomplete'))
    builder = sources.prepare('shapes/tiny', data_dir=data_dir)
    self.assertEqual(os.listdir(config_dir), ['1.1.0'])
    self.assertEqual(builder.info.splits['train'].num_examples, 240)


class BuilderTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.data_dir)
    cls.builder = sources.prepare('shapes/tiny', data_dir=cls.data_dir)

  def test_splits_have_the_configured_sizes(self):
    splits = self.builder.info.splits
    self.assertEqual({k: splits[k].num_examples for k in splits},
                     {'train': 240, 'validation': 40, 'test': 40})

  def test_stored_example_equals_the_generated_one(self):
    records = self.builder.as_data_source('validation')
    by_id = {int(r['image_id']): r for r in records}
    self.assertEqual(sorted(by_id), list(range(1_000_000, 1_000_040)))
    for index in (0, 17, 39):
      expected = shapes.generate_example(TINY, 'validation', index)
      record = by_id[expected['image_id']]
      np.testing.assert_array_equal(record['image'], expected['image'])
      self.assertEqual([c.decode() for c in record['captions']],
                       expected['captions'])
      self.assertEqual(json.loads(record['scene']), expected['scene'])

  def test_image_is_a_png_of_the_configured_size(self):
    data = self.builder.as_data_source(
        'test', decoders={'image': tfds.decode.SkipDecoding()})[0]
    image = Image.open(io.BytesIO(data['image']))
    self.assertEqual((image.format, image.size, image.mode),
                     ('PNG', (64, 64), 'RGB'))

  def test_generation_is_deterministic_and_seeded(self):
    first = shapes.generate_example(TINY, 'train', 5)
    again = shapes.generate_example(TINY, 'train', 5)
    np.testing.assert_array_equal(first['image'], again['image'])
    self.assertEqual(first['captions'], again['captions'])
    other_seed = shapes.ShapesConfig(name='other', num_train=10, seed=1)
    other = shapes.generate_example(other_seed, 'train', 5)
    self.assertFalse(np.array_equal(first['image'], other['image']))

  def test_splits_differ(self):
    train = shapes.generate_example(TINY, 'train', 0)
    test = shapes.generate_example(TINY, 'test', 0)
    self.assertNotEqual(train['scene'], test['scene'])
    self.assertEqual(test['image_id'], 2_000_000)


if __name__ == '__main__':
  absltest.main()
