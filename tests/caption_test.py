"""Tests of the caption command with bad files and a damaged checkpoint."""

import glob
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
from capjax.data import vocab as vocab_lib
from capjax.models import captioning
from capjax.tasks import captioning as captioning_task
from configs.captioning import shapes as shapes_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ('a', 'red', 'blue', 'circle', 'square', 'on', 'left')


def _save_untrained_workdir(workdir):
  """A workdir whose step 10 is an untrained tiny model, step 20 damaged."""
  config = shapes_config.get_config('tiny')
  vocab = vocab_lib.Vocab(WORDS)
  model = captioning.create(config, len(vocab))
  size = config.dataset.image_size
  params = jax.jit(model.init)(jax.random.key(0),
                      jnp.zeros((1, size, size, 3), jnp.uint8),
                      jnp.zeros((1, config.dataset.max_len), jnp.int32))
  # Sharper, image-dependent word choices and no special tokens: captions
  # that differ between images (an untrained model says nothing).
  output = params['decoder']['output']
  output['kernel'] = output['kernel'] * 30
  output['bias'] = output['bias'].at[:len(vocab_lib.SPECIAL_TOKENS)].add(-10)
  checkpointer = checkpointing.Checkpointer(workdir, keep=3)
  for step in (10, 20):
    state = {'step': jnp.asarray(step),
             'params': jax.tree.map(lambda p, s=step: p * s / 10, params)}
    checkpointer.save(step, state, config, captioning_task.meta_of(vocab))
  checkpointer.wait()
  checkpointer.close()
  data = glob.glob(os.path.join(workdir, 'checkpoints', '20', 'state', '**',
                                'd', '*'), recursive=True)
  largest = max(data, key=os.path.getsize)
  os.truncate(largest, os.path.getsize(largest) // 2)
  return size


class CaptionCommandTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='capjax-caption-test-')
    cls.workdir = os.path.join(cls.root, 'run')
    size = _save_untrained_workdir(cls.workdir)
    rng = np.random.default_rng(0)
    cls.good = []
    for i in range(2):
      path = os.path.join(cls.root, f'good{i}.png')
      Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(
          path)
      cls.good.append(path)
    cls.truncated = os.path.join(cls.root, 'truncated.png')
    with open(cls.good[0], 'rb') as f:
      data = f.read()
    with open(cls.truncated, 'wb') as f:
      f.write(data[:len(data) // 2])
    cls.missing = os.path.join(cls.root, 'missing.jpg')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_bad_files_are_named_and_the_good_ones_captioned(self):
    with self.assertLogs(level='WARNING'):
      expected = inference.caption_files(self.workdir, self.good)
    self.assertNotEqual(expected[0], expected[1])
    self.assertTrue(all(expected), expected)
    result = subprocess.run(
        [sys.executable, '-m', 'capjax.caption', f'--workdir={self.workdir}',
         self.good[0], self.truncated, self.missing, self.good[1]],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=REPO))
    self.assertEqual(result.returncode, 1, result.stderr[-2000:])
    self.assertEqual(result.stdout.splitlines(),
                     [f'{p}\t{c}' for p, c in zip(self.good, expected)])
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 3, result.stderr[-3000:])
    self.assertStartsWith(
        lines[0], f'error: Corrupt or unreadable image {self.truncated}')
    self.assertEqual(
        lines[1],
        f'error: Cannot read image {self.missing}: No such file or directory.')
    # The damaged newest step is named once; step 10 captions.
    self.assertRegex(lines[2], r'checkpoints/20 is damaged: .* is truncated '
                     r'.*\. Restored step 10 instead\.$')


if __name__ == '__main__':
  absltest.main()
