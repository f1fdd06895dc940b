"""The commands that serve a workdir, given one of the wrong kind or bad files.

Each mistake a user makes at the command line (a workdir of another task, a
missing workdir, an unreadable image) is one `error:` line and exit code 1,
never a traceback. The workdirs are untrained tiny models saved directly.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from capjax import checkpointing
from capjax import inference
from capjax import retrieval_index
from capjax import tagging
from capjax.data import text_corpus
from capjax.data import vocab as vocab_lib
from capjax.tasks import language_model
from tests import tiny_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAGS = ('red', 'circle', 'small', 'blue', 'square')


_config, _save = tiny_runs.config_file, tiny_runs.save_step


def save_tag_workdir(workdir):
  """An untrained multi-label tag model (config.task multilabel)."""
  config = _config('hashtags/shapes.py', 'tiny,model=multilabel')
  config.dataset.image_size = 16
  vocab = vocab_lib.Vocab(TAGS)
  model = tagging.create_model(config, vocab)
  params = jax.jit(model.init)(jax.random.key(0),
                               np.zeros((1, 16, 16, 3), np.uint8))
  _save(workdir, params, config, {'task': 'multilabel',
                                  'vocab': vocab.to_json()})


def save_story_workdir(workdir):
  """An untrained character LM (config.task language_model)."""
  config = _config('story/text.py', 'tiny,corpus=unused')
  chars = text_corpus.build_chars('#red blue circle. A small square!\n')
  meta = {'task': 'language_model', 'vocab': chars.to_json()}
  model = language_model.create_model(config, meta)
  params = jax.jit(model.init)(
      jax.random.key(1), jnp.zeros((1, 4), jnp.int32))['params']
  _save(workdir, params, config, meta)


def damage_latest_keep_best(workdir):
  """A copy of the saved step as the best one; the latest step damaged."""
  latest = os.path.join(workdir, checkpointing.LATEST_DIR)
  shutil.copytree(latest, os.path.join(workdir, checkpointing.BEST_DIR))
  os.remove(os.path.join(latest, '1', 'state', checkpointing.PYTREE_METADATA))


class CommandsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='capjax-commands-test-')
    cls.tags = os.path.join(cls.root, 'tags')
    cls.story = os.path.join(cls.root, 'story')
    save_tag_workdir(cls.tags)
    save_story_workdir(cls.story)
    cls.image = os.path.join(cls.root, 'red.png')
    Image.new('RGB', (20, 16), (200, 20, 20)).save(cls.image)
    cls.not_image = os.path.join(cls.root, 'notes.png')
    with open(cls.not_image, 'w') as f:
      f.write('not an image')
    cls.missing = os.path.join(cls.root, 'missing')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _run(self, module, *args):
    return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)

  def assertOneErrorLine(self, result, pattern):
    self.assertEqual(result.returncode, 1, result.stderr)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1, result.stderr)
    self.assertRegex(lines[0], f'^error: {pattern}')

  # ----------------------------------------------------------- caption ---

  def test_caption_files_refuses_a_model_that_does_not_caption(self):
    for workdir, task in ((self.tags, 'multilabel'),
                          (self.story, 'language_model')):
      with self.subTest(task), self.assertRaisesRegex(
          ValueError, f"^{workdir} holds a '{task}' model .*does not "
          'caption images'):
        inference.caption_files(workdir, [self.image])

  def test_caption_command_on_a_story_workdir_is_one_line(self):
    result = self._run('capjax.caption', f'--workdir={self.story}',
                       self.image)
    self.assertOneErrorLine(
        result, f"{self.story} holds a 'language_model' model .*capjax.story")

  def test_caption_flags_out_of_range_are_one_line(self):
    for flag, message in (
        ('--batch_size=0', '0 is not a positive integer'),
        ('--beam_size=-1', '-1 is not a non-negative integer')):
      with self.subTest(flag):
        result = self._run('capjax.caption', f'--workdir={self.tags}', flag,
                           self.image)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr.strip(),
                         f'error: flag {flag}: {message}')

  def test_bad_command_lines_of_the_serving_commands_are_one_line(self):
    for args, message in (
        (('capjax.story', '--tags_workdir=x', '--story_workdir=y'),
         'give at least one image file.'),
        (('capjax.tag_table', '--nope'), "Unknown command line flag 'nope'"),
        (('capjax.retrieve', '--workdir=x', '--text=a', '--image=b'),
         'give --text or --image, not both.'),
        (('capjax.retrieve', '--workdir=x', '--text=a', '--top_k=0'),
         '--top_k must be >= 1.')):
      with self.subTest(args[0] + ' ' + message):
        result = self._run(*args)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.strip(), f'error: {message}')

  # ---------------------------------------------------------- retrieve ---

  def test_retriever_refuses_a_workdir_of_another_task(self):
    with self.assertRaisesRegex(
        ValueError,
        f"^{self.tags} holds a 'multilabel' model .*not a retrieval model"):
      retrieval_index.Retriever(self.tags)

  # ----------------------------------------------------- story, tags ---

  def test_tagging_refuses_a_story_workdir_naming_it(self):
    with self.assertRaisesRegex(
        ValueError,
        f"^{self.story} holds a 'language_model' model .*not a tag model"):
      tagging.from_workdir(self.story)

  def test_story_with_swapped_workdirs_is_one_line(self):
    result = self._run('capjax.story', f'--tags_workdir={self.story}',
                       f'--story_workdir={self.tags}', '--length=5',
                       self.image)
    self.assertOneErrorLine(result, f'{self.story} holds .*not a tag model')

  def test_story_without_a_workdir_is_one_line(self):
    result = self._run('capjax.story', f'--tags_workdir={self.tags}',
                       f'--story_workdir={self.missing}', '--length=5',
                       self.image)
    self.assertOneErrorLine(result, f'Workdir {self.missing} does not exist')

  def test_story_names_a_bad_image_and_tells_the_others(self):
    result = self._run('capjax.story', f'--tags_workdir={self.tags}',
                       f'--story_workdir={self.story}', '--length=5',
                       self.image, self.not_image)
    self.assertOneErrorLine(result, f'Corrupt or unreadable image '
                            f'{self.not_image}')
    self.assertEqual(result.stdout.splitlines()[0], self.image)

  def test_story_advises_and_takes_the_flag_of_the_damaged_workdir(self):
    for which, save in (('tags', save_tag_workdir),
                        ('story', save_story_workdir)):
      with self.subTest(which):
        workdirs = {'tags': self.tags, 'story': self.story}
        workdirs[which] = os.path.join(self.root, f'damaged_{which}')
        save(workdirs[which])
        damage_latest_keep_best(workdirs[which])
        args = [f'--tags_workdir={workdirs["tags"]}',
                f'--story_workdir={workdirs["story"]}', '--length=5',
                self.image]
        result = self._run('capjax.story', *args)
        self.assertEqual(result.returncode, 1, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        self.assertRegex(last, f'^error: No intact checkpoint .*: try '
                         f'--{which}_checkpoint=best, or train again')
        result = self._run('capjax.story', f'--{which}_checkpoint=best',
                           *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[0], self.image)

  def test_tag_table_advises_and_takes_checkpoint_best(self):
    workdir = os.path.join(self.root, 'damaged_table')
    save_tag_workdir(workdir)
    damage_latest_keep_best(workdir)
    result = self._run('capjax.tag_table', f'--workdirs={workdir}',
                       '--limit=2')
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertRegex(result.stderr.strip().splitlines()[-1],
                     '^error: No intact checkpoint .*: try '
                     '--checkpoint=best, or train again')
    result = self._run('capjax.tag_table', f'--workdirs={workdir}',
                       '--limit=2', '--checkpoint=best')
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn('Bleu_1', result.stdout)

  def test_tag_table_of_a_story_workdir_is_one_line(self):
    result = self._run('capjax.tag_table', f'--workdirs={self.story}')
    self.assertOneErrorLine(result, f'{self.story} holds .*not a tag model')


class ConfigFlagTest(absltest.TestCase):
  """extract_features reads --config as main does: bad ones are one line."""

  def _extract(self, *args):
    return subprocess.run(
        [sys.executable, '-m', 'capjax.extract_features',
         '--workdir=/tmp/never', *args], cwd=REPO, capture_output=True,
        text=True, timeout=600)

  def test_a_config_file_that_does_not_exist_is_one_line(self):
    result = self._extract('--config=configs/features/nope.py')
    self.assertEqual(result.returncode, 2)
    self.assertEqual(
        result.stderr.strip(),
        'error: could not load the config file: [Errno 2] No such file or '
        "directory: 'configs/features/nope.py'")

  def test_a_misspelt_key_names_it_and_the_likely_one(self):
    result = self._extract('--config=configs/features/flickr8k_vgg16.py:tiny',
                           '--config.features.wieghts=weights/vgg16')
    self.assertEqual(result.returncode, 2)
    self.assertEqual(
        result.stderr.strip(),
        "error: unknown config key 'features.wieghts' (from "
        '--config.features.wieghts): the config file has no such field. Did '
        'you mean "weights" instead of "wieghts"?')


if __name__ == '__main__':
  absltest.main()
