"""Feature extraction from a folder: crops, skipped files, resuming."""

import os
import signal
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import jax
import numpy as np
from PIL import Image
from PIL import ImageOps

from capjax import extraction
from capjax.models.encoders import checkpoint
from capjax.models.encoders import small_cnn

SIZE = 32
SHORT_SIDE = 40
FIELDS = {'channels': [4, 8], 'strides': [2, 2], 'global_dim': 6}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_images(folder, count, seed=0):
  """Random photos of several shapes (one already SIZE x SIZE)."""
  rng = np.random.default_rng(seed)
  shapes = [(SIZE, SIZE), (48, 64), (70, 45), (41, 41)]
  for i in range(count):
    height, width = shapes[i % len(shapes)]
    pixels = rng.integers(0, 256, (height, width, 3), np.uint8)
    Image.fromarray(pixels).save(os.path.join(folder, f'img{i:02d}.png'))


class ExtractionTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    root = cls.tmp.name
    cls.encoder = small_cnn.SmallCNN(**FIELDS)
    images = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    cls.params = cls.encoder.init(jax.random.key(0), images)
    cls.weights = os.path.join(root, 'weights')
    checkpoint.save(cls.weights, 'small_cnn', FIELDS, cls.params,
                    source='random', image_size=SIZE)
    cls.folder = os.path.join(root, 'images')
    os.makedirs(cls.folder)
    _write_images(cls.folder, 8)
    with open(os.path.join(cls.folder, 'broken.jpg'), 'wb') as f:
      f.write(b'\xff\xd8\xff\xe0 not really a jpeg')

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def _out(self, name):
    return os.path.join(self.tmp.name, name)

  def _load(self, path):
    with np.load(path) as f:
      return {k: f[k] for k in f.files}

  def test_ten_crop_average_equals_the_ten_crops_one_by_one(self):
    settings = extraction.Settings(crop='ten', short_side=SHORT_SIDE,
                                   grid=True, store_dtype='float32', batch=8)
    out = self._out('ten.npz')
    extraction.extract_folder(self.folder, self.weights, out, settings)
    result = self._load(out)
    name = 'img01.png'  # 48 x 64 -> 40 x 53
    row = list(result['names']).index(name)
    with Image.open(os.path.join(self.folder, name)) as image:
      width, height = image.size
      scale = SHORT_SIDE / min(width, height)
      image = image.convert('RGB').resize(
          (round(width * scale), round(height * scale)),
          Image.Resampling.BILINEAR)
    width, height = image.size
    left, top = (width - SIZE) // 2, (height - SIZE) // 2
    boxes = [(0, 0), (width - SIZE, 0), (0, height - SIZE),
             (width - SIZE, height - SIZE), (left, top)]
    pieces = [image.crop((x, y, x + SIZE, y + SIZE)) for x, y in boxes]
    pieces += [ImageOps.mirror(p) for p in pieces]
    globals_, grids = [], []
    for piece in pieces:
      pooled, grid = self.encoder.apply(self.params,
                                        np.asarray(piece)[None])
      globals_.append(pooled[0])
      grids.append(grid[0])
    np.testing.assert_allclose(result['global'][row],
                               np.mean(globals_, axis=0), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(result['grid'][row], np.mean(grids, axis=0),
                               rtol=1e-5, atol=1e-5)

  def test_corrupt_images_are_skipped_and_counted(self):
    out = self._out('squash.npz')
    summary = extraction.extract_folder(
        self.folder, self.weights, out,
        extraction.Settings(store_dtype='float32', batch=8))
    result = self._load(out)
    self.assertEqual(summary['skipped'], 1)
    self.assertEqual(list(result['skipped']), ['broken.jpg'])
    self.assertLen(result['names'], 8)
    self.assertEqual(result['global'].shape, (8, 6))
    self.assertNotIn('grid', result)
    # An image already at the input size goes in as it is.
    with Image.open(os.path.join(self.folder, 'img00.png')) as image:
      pixels = np.asarray(image.convert('RGB'))[None]
    expected, _ = self.encoder.apply(self.params, pixels)
    np.testing.assert_allclose(result['global'][0], expected[0], rtol=1e-5,
                               atol=1e-6)

  def test_a_killed_run_continues_to_the_uninterrupted_result(self):
    flags = ['--crop=center', f'--short_side={SHORT_SIDE}', '--grid',
             '--batch=8', '--chunk=2']
    out = self._out('resumed.npz')
    env = dict(os.environ, PYTHONPATH=REPO)
    command = [sys.executable, '-m', 'capjax.extract_features',
               f'--weights={self.weights}', f'--images={self.folder}',
               f'--output={out}', *flags]
    process = subprocess.Popen(command + ['--throttle_s=30'], env=env,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=REPO)
    first_chunk = os.path.join(out + '.partial', 'chunk_000000.npz')
    deadline = time.time() + 120
    while not os.path.exists(first_chunk) and time.time() < deadline:
      self.assertIsNone(process.poll(), 'the extraction ended early')
      time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    self.assertTrue(os.path.exists(first_chunk))
    self.assertFalse(os.path.exists(out))
    # Started again (here in-process, with the same settings) it continues.
    settings = extraction.Settings(crop='center', short_side=SHORT_SIDE,
                                   grid=True, batch=8, chunk=2)
    summary = extraction.extract_folder(self.folder, self.weights, out,
                                        settings)
    self.assertGreaterEqual(summary['resumed_chunks'], 1)
    self.assertFalse(os.path.exists(out + '.partial'))
    straight = self._out('straight.npz')
    extraction.extract_folder(self.folder, self.weights, straight, settings)
    resumed, expected = self._load(out), self._load(straight)
    self.assertEqual(sorted(resumed), sorted(expected))
    for key in expected:
      np.testing.assert_array_equal(resumed[key], expected[key], err_msg=key)

  def test_continuing_with_other_settings_is_refused(self):
    out = self._out('refused.npz')
    os.makedirs(out + '.partial')
    with open(os.path.join(out + '.partial', extraction.MANIFEST), 'w') as f:
      f.write('{"settings": "other"}')
    with self.assertRaisesRegex(ValueError, 'other settings'):
      extraction.extract_folder(self.folder, self.weights, out,
                                extraction.Settings())


if __name__ == '__main__':
  absltest.main()
