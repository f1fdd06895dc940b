"""Image -> hashtags -> story from two checkpoints, as `capjax.story` runs."""

import os
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from capjax import story_pipeline
from capjax import tagging
from capjax.data import text_corpus
from capjax.data import vocab as vocab_lib
from capjax.tasks import language_model
from tests import tiny_runs

TAGS = ('red', 'circle', 'small', 'blue', 'square', 'instagood')


_config, _save = tiny_runs.config_file, tiny_runs.save_step


class StoryPipelineTest(absltest.TestCase):

  def test_tags_then_a_story_of_the_asked_length_and_a_gallery(self):
    root = self.enterContext(tempfile.TemporaryDirectory())
    tag_config = _config('hashtags/shapes.py', 'tiny,model=multilabel')
    tag_config.dataset.image_size = 16
    tag_vocab = vocab_lib.Vocab(TAGS)
    tag_model = tagging.create_model(tag_config, tag_vocab)
    images = np.zeros((1, 16, 16, 3), np.uint8)
    tag_params = jax.jit(tag_model.init)(jax.random.key(0), images)
    tag_meta = {'task': 'multilabel', 'vocab': tag_vocab.to_json()}
    _save(os.path.join(root, 'tags'), tag_params, tag_config, tag_meta)

    story_config = _config('story/text.py', 'tiny,corpus=unused')
    chars = text_corpus.build_chars('#red blue circle. A small square!\n')
    story_meta = {'task': 'language_model', 'vocab': chars.to_json()}
    story_model = language_model.create_model(story_config, story_meta)
    story_params = jax.jit(story_model.init)(
        jax.random.key(1), jnp.zeros((1, 4), jnp.int32))['params']
    _save(os.path.join(root, 'story'), story_params, story_config, story_meta)

    paths = []
    for i, colour in enumerate([(200, 20, 20), (20, 20, 200), (9, 9, 9)]):
      paths.append(os.path.join(root, f'image{i}.png'))
      Image.new('RGB', (40, 30), colour).save(paths[-1])
    results = story_pipeline.tell(
        os.path.join(root, 'tags'), os.path.join(root, 'story'), paths,
        length=37, seed=3, temperature=0.9, batch_size=2)
    self.assertLen(results, 3)
    for result in results:
      self.assertNotEmpty(result.tags)  # a classifier emits its best tag
      self.assertContainsSubset(result.tags, TAGS)
      self.assertEqual(result.seed, f'#{result.tags[0]} ')
      self.assertLen(result.story, 37)
    text = story_pipeline.format_text(results)
    lines = text.split('\n')
    self.assertEqual(lines[0], paths[0])
    self.assertTrue(all(w.startswith('#') for w in lines[1].split()))
    gallery = story_pipeline.write_gallery(
        os.path.join(root, 'out.html'), results, title='stories')
    with open(gallery, encoding='utf-8') as f:
      page = f.read()
    self.assertEqual(page.count('<img src="data:image/png;base64,'), 3)
    self.assertIn(results[1].story.replace('&', '&amp;')[:5], page)

  def test_a_story_workdir_must_hold_a_story_model(self):
    root = self.enterContext(tempfile.TemporaryDirectory())
    config = _config('hashtags/shapes.py', 'tiny,model=multilabel')
    _save(root, {'w': jnp.zeros(2)}, config, {'vocab': {}})
    with self.assertRaisesRegex(ValueError, 'not a story model'):
      story_pipeline.stories.load_workdir(root)


if __name__ == '__main__':
  absltest.main()
