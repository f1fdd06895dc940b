"""Tests of image file checking and decoding."""

import io
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
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

  def test_a_file_of_no_image_format_is_named_without_buffer_reprs(self):
    path = os.path.join(_tempdir(self), 'notes.png')
    with open(path, 'wb') as f:
      f.write(b'these are not the pixels you are looking for')
    for read in (images.read_image_file, images.load_file):
      with self.assertRaises(images.BadImageError) as raised:
        read(path)
      self.assertEqual(str(raised.exception),
                       f'Corrupt or unreadable image {path}: cannot identify '
                       'image file')

  def test_load_file_reads_and_resizes(self):
    path = os.path.join(_tempdir(self), 'x.png')
    Image.new('RGB', (9, 4), (10, 20, 30)).save(path)
    image = images.load_file(path, (4, 4))
    self.assertEqual(image.shape, (4, 4, 3))
    np.testing.assert_array_equal(image[0, 0], (10, 20, 30))


# Each pixel of the test images becomes a block, so that JPEG keeps colours.
BLOCK = 8


def _saved(image, fmt):
  """A Pillow image in BLOCK-sized pixels as `fmt` (PNG keeps I;16...)."""
  info = dict(image.info)
  image = image.resize((image.width * BLOCK, image.height * BLOCK),
                       Image.Resampling.NEAREST)
  image.info.update(info)
  buffer = io.BytesIO()
  image.save(buffer, format=fmt)
  return buffer.getvalue()


# 16-bit grey values and their 8-bit equivalents, round(v / 257).
WIDE = np.array([[0, 257, 4000], [32768, 65000, 65535]])
WIDE_AS_8_BIT = np.array([[0, 1, 16], [128, 253, 255]])


class ModesTest(parameterized.TestCase):
  """Every Pillow mode comes out as the uint8 RGB a viewer would show."""

  def _all_paths(self, data, size):
    """The RGB array of `data` by decode, load_file and read_image_file."""
    path = os.path.join(_tempdir(self), 'image')
    with open(path, 'wb') as f:
      f.write(data)
    stored = images.read_image_file(path)  # re-encoded as JPEG
    return (images.decode(data), images.decode(data, size),
            images.load_file(path)), images.decode(stored)

  def _check(self, data, expected):
    expected = np.repeat(np.repeat(expected, BLOCK, 0), BLOCK, 1)
    exact, stored = self._all_paths(data, expected.shape[:2])
    for image in exact:
      self.assertEqual(image.dtype, np.uint8)
      np.testing.assert_array_equal(image, expected)
    # The dataset's copy is a JPEG: lossy at the edges of the blocks.
    np.testing.assert_allclose(stored.mean((0, 1)), expected.mean((0, 1)),
                               atol=6)

  @parameterized.parameters(
      ('I;16', '<u2', 'PNG'), ('I;16', '<u2', 'TIFF'),
      ('I;16B', '>u2', 'TIFF'))
  def test_16_bit_grey_is_scaled_to_8_bits(self, mode, dtype, fmt):
    image = Image.frombytes(mode, WIDE.shape[::-1],
                            WIDE.astype(dtype).tobytes())
    data = _saved(image, fmt)
    self.assertEqual(Image.open(io.BytesIO(data)).mode, mode)
    expected = np.repeat(WIDE_AS_8_BIT[..., None], 3, axis=-1)
    self._check(data, expected)

  def test_32_bit_grey_is_read_as_16_bit_values(self):
    image = Image.fromarray(WIDE.astype(np.int32), 'I')
    data = _saved(image, 'TIFF')
    self.assertEqual(Image.open(io.BytesIO(data)).mode, 'I')
    expected = np.repeat(WIDE_AS_8_BIT[..., None], 3, axis=-1)
    self._check(data, expected)

  def test_cmyk_multiplies_out_black(self):
    image = Image.new('CMYK', (2, 3), (100, 50, 0, 30))
    # R = (255 - K) * (1 - C / 255), ...
    expected = np.broadcast_to(
        np.round(np.array([225 * 155, 225 * 205, 225 * 255]) / 255),
        (3, 2, 3))
    self._check(_saved(image, 'JPEG'), expected)

  def test_palette_transparency_shows_white(self):
    image = Image.new('P', (2, 3), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((1, 1), 1)
    image.info['transparency'] = 0  # red is transparent
    data = _saved(image, 'PNG')
    self.assertIn('transparency', Image.open(io.BytesIO(data)).info)
    expected = np.full((3, 2, 3), 255)
    expected[1, 1] = (0, 0, 255)
    self._check(data, expected)

  def test_grey_with_alpha_is_composited_over_white(self):
    grey = np.full((3, 2), 100, np.uint8)
    alpha = np.array([[0, 255], [128, 255], [255, 0]], np.uint8)
    image = Image.fromarray(np.stack([grey, alpha], -1), 'LA')
    blend = round((100 * 128 + 255 * 127) / 255)
    expected = np.array([[255, 100], [blend, 100], [100, 255]])
    expected = np.repeat(expected[..., None], 3, axis=-1)
    self._check(_saved(image, 'PNG'), expected)

  def test_rgba_is_composited_over_white(self):
    pixels = np.zeros((3, 2, 4), np.uint8)
    pixels[0, 0] = (10, 20, 30, 255)  # the rest is transparent black
    expected = np.full((3, 2, 3), 255)
    expected[0, 0] = (10, 20, 30)
    self._check(_saved(Image.fromarray(pixels, 'RGBA'), 'PNG'), expected)

  def test_one_bit_is_black_and_white(self):
    bits = np.array([[1, 0], [0, 1], [1, 1]], bool)
    data = _saved(Image.fromarray(bits).convert('1'), 'PNG')
    self.assertEqual(Image.open(io.BytesIO(data)).mode, '1')
    expected = np.repeat(np.where(bits, 255, 0)[..., None], 3, axis=-1)
    self._check(data, expected)


if __name__ == '__main__':
  absltest.main()
