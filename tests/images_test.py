"""Tests of image file checking and decoding."""

import io
import os
import tempfile

from absl.testing import absltest
import numpy as np
from PIL import Image

from capjax.data import images


def _tempdir(test):
  """A temporary folder removed when `test` ends."""
  return test.enterContext(tempfile.TemporaryDirectory())


def _encoded(image, fmt, **kwargs):
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format=fmt, **kwargs)
  return buffer.getvalue()


class ImagesTest(absltest.TestCase):

  def test_png_decodes_losslessly(self):
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    np.testing.assert_array_equal(images.decode(_encoded(image, 'PNG')), image)

  def test_decode_resizes_to_height_and_width(self):
    image = np.full((40, 60, 3), 120, np.uint8)
    decoded = images.decode(_encoded(image, 'JPEG'), (10, 20))
    self.assertEqual((decoded.shape, decoded.dtype), ((10, 20, 3), np.uint8))
    np.testing.assert_allclose(decoded, 120, atol=3)

  def test_grey_image_decodes_to_rgb(self):
    grey = np.full((6, 6), 77, np.uint8)
    decoded = images.decode(_encoded(grey, 'PNG'))
    self.assertEqual(decoded.shape, (6, 6, 3))
    np.testing.assert_array_equal(decoded, 77)

  def test_read_image_file_keeps_rgb_jpeg_bytes(self):
    path = os.path.join(_tempdir(self), 'a.jpg')
    data = _encoded(np.zeros((8, 8, 3), np.uint8), 'JPEG')
    with open(path, 'wb') as f:
      f.write(data)
    self.assertEqual(images.read_image_file(path), data)

  def test_read_image_file_shrinks_to_min_side(self):
    path = os.path.join(_tempdir(self), 'big.png')
    Image.new('RGB', (300, 200)).save(path)
    data = images.read_image_file(path, min_side=100)
    self.assertEqual(Image.open(io.BytesIO(data)).size, (150, 100))
    self.assertEqual(Image.open(io.BytesIO(data)).format, 'JPEG')

  def test_bad_files_raise_one_line_errors_naming_them(self):
    directory = _tempdir(self)
    truncated = os.path.join(directory, 'truncated.jpg')
    data = _encoded(np.zeros((64, 64, 3), np.uint8), 'JPEG')
    with open(truncated, 'wb') as f:
      f.write(data[:len(data) // 2])
    missing = os.path.join(directory, 'missing.jpg')
    for path in (truncated, missing):
      for read in (images.read_image_file, images.load_file):
        with self.assertRaises(images.BadImageError) as raised:
          read(path)
        self.assertIn(path, str(raised.exception))
        self.assertNotIn('\n', str(raised.exception))

  def test_load_file_reads_and_resizes(self):
    path = os.path.join(_tempdir(self), 'x.png')
    Image.new('RGB', (9, 4), (10, 20, 30)).save(path)
    image = images.load_file(path, (4, 4))
    self.assertEqual(image.shape, (4, 4, 3))
    np.testing.assert_array_equal(image[0, 0], (10, 20, 30))


if __name__ == '__main__':
  absltest.main()
