"""Image bytes: checking files when a dataset is prepared, decoding when read.

Builders of real datasets call `read_image_file` on every photo: it returns
JPEG bytes ready to store, or raises `BadImageError` for a missing, empty,
truncated or otherwise unreadable file so the builder can skip and count it.
Pipelines call `decode` to turn stored PNG/JPEG bytes into uint8 RGB arrays of
a fixed size. Every path goes through `to_rgb`: 16-bit greyscale is scaled
to 8 bits (Pillow alone clips it to almost all white) and transparent pixels
are laid over white (Pillow alone shows whatever colour lies under them).
"""

import io
import os
import re

import numpy as np
from PIL import Image

JPEG_QUALITY = 90
# Pillow modes of 16-bit greyscale ('I' is 32-bit, read as 16-bit values).
WIDE_GREY_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I')
# Modes that carry an alpha channel.
ALPHA_MODES = ('RGBA', 'RGBa', 'LA', 'La', 'PA')
# What transparent pixels show.
BACKGROUND = (255, 255, 255)


class BadImageError(ValueError):
  """An image file that cannot be read; the message names the file."""


# Pillow names the in-memory buffer it read from, e.g.
# "cannot identify image file <_io.BytesIO object at 0x7f...>".
_BUFFER_REPR_RE = re.compile(r'\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>')


def _corrupt(path: str, error: Exception) -> BadImageError:
  """The one-line error for an image file that does not decode."""
  reason = _BUFFER_REPR_RE.sub('', str(error)).strip() or type(error).__name__
  return BadImageError(f'Corrupt or unreadable image {path}: {reason}')


def _resized_side(width: int, height: int, min_side: int) -> tuple[int, int]:
  scale = min_side / min(width, height)
  return max(1, round(width * scale)), max(1, round(height * scale))


def to_rgb(image: Image.Image) -> Image.Image:
  """An image of any Pillow mode as 8-bit RGB, as a viewer would show it.

  16-bit greyscale (`I;16`, `I;16B`, and `I` taken as 0..65535) is scaled
  to 0..255 (rounded); an image with transparency (an alpha channel, or a
  palette or tRNS transparent colour) is composited over white; CMYK,
  palette, 1-bit and greyscale images use Pillow's conversions.

  Args:
    image: a loaded Pillow image.

  Returns:
    An image of mode 'RGB'.
  """
  if image.mode == 'RGB' and 'transparency' not in image.info:
    return image
  if image.mode in WIDE_GREY_MODES:
    wide = np.clip(np.asarray(image, np.int64), 0, 65535)
    grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=-1), 'RGB')
  if image.mode in ALPHA_MODES or 'transparency' in image.info:
    rgba = image.convert('RGBA')
    background = Image.new('RGBA', rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert('RGB')
  return image.convert('RGB')


def read_image_file(
    path: str | os.PathLike, *, min_side: int | None = None) -> bytes:
  """Checks an image file and returns bytes to store for it.

  The whole image is decoded once (so a truncated JPEG is caught). A JPEG in
  RGB that needs no resizing is returned unchanged; anything else (grey, CMYK,
  PNG, or resized) is re-encoded as an RGB JPEG.

  Args:
    path: the image file.
    min_side: when set and the shorter side is longer, shrink the image so
      that its shorter side is `min_side` pixels (aspect kept).

  Returns:
    JPEG bytes.

  Raises:
    BadImageError: the file is missing or not a readable image.
  """
  path = os.fspath(path)
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise BadImageError(f'Cannot read image {path}: {e.strerror}.') from None
  try:
    with Image.open(io.BytesIO(data)) as image:
      image.load()
      fmt, mode, size = image.format, image.mode, image.size
      resize = min_side is not None and min(size) > min_side
      if fmt == 'JPEG' and mode == 'RGB' and not resize:
        return data
      image = to_rgb(image)
      if resize:
        image = image.resize(_resized_side(*size, min_side),
                             Image.Resampling.BILINEAR)
      buffer = io.BytesIO()
      image.save(buffer, format='JPEG', quality=JPEG_QUALITY)
      return buffer.getvalue()
  except (OSError, ValueError, Image.DecompressionBombError,
          SyntaxError) as e:
    raise _corrupt(path, e) from None


def decode(data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
  """Decodes PNG/JPEG bytes to RGB, resized to `size` when given.

  A JPEG is decoded at the smallest DCT scale that still covers `size`
  (much faster for large photos), converted by `to_rgb`, then resized with a
  bilinear filter (aspect ratio not kept).

  Args:
    data: encoded image bytes.
    size: (height, width) of the result, or None to keep the stored size.

  Returns:
    image: [height, width, 3] uint8.
  """
  with Image.open(io.BytesIO(data)) as image:
    if size is not None:
      height, width = size
      if image.format == 'JPEG':
        image.draft('RGB', (width, height))
      image = to_rgb(image)
      if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    else:
      image = to_rgb(image)
    return np.asarray(image)


def load_file(
    path: str | os.PathLike, size: tuple[int, int] | None = None
) -> np.ndarray:
  """Reads an image file (e.g. one to caption) as RGB of `size`.

  Args:
    path: a PNG/JPEG/... file.
    size: (height, width) of the result, or None to keep the file's size.

  Returns:
    image: [height, width, 3] uint8.

  Raises:
    BadImageError: the file is missing or not a readable image; the one-line
      message names it.
  """
  path = os.fspath(path)
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise BadImageError(f'Cannot read image {path}: {e.strerror}.') from None
  try:
    return decode(data, size)
  except (OSError, ValueError, Image.DecompressionBombError,
          SyntaxError) as e:
    raise _corrupt(path, e) from None


def split_readable(
    paths: list[str],
) -> tuple[list[str], list[BadImageError]]:
  """The paths that decode as images, and one error for each other path.

  A command that reads several image files names every bad one (each
  error's message is one line naming its file) and still serves the others.

  Args:
    paths: image files.

  Returns:
    `(good, errors)`: the readable paths in order, and the errors of the rest.
  """
  good, errors = [], []
  for path in paths:
    try:
      load_file(path)
    except BadImageError as e:
      errors.append(e)
    else:
      good.append(path)
  return good, errors
