"""Image files -> network inputs: squash, centre crop, or the 10-crop set.

`squash` resizes to size x size (aspect not kept); `center` resizes the
shorter side to `short_side` and cuts the centre size x size; `ten` (m-RNN,
after Krizhevsky et al.) resizes the shorter side to `short_side` (256 at
224 px) and cuts the four corners and the centre, and their mirror images.
An image already size x size is used as it is by `squash` and `center`.
"""

import io

import numpy as np
from PIL import Image

from capjax.data import images

MODES = ('squash', 'center', 'ten')
CROPS = {'squash': 1, 'center': 1, 'ten': 10}


def default_short_side(size: int) -> int:
  """256 at 224 px: the ImageNet evaluation ratio."""
  return round(size * 256 / 224)


def check(mode: str, size: int, short_side: int) -> None:
  """One-line errors for bad crop settings."""
  if mode not in MODES:
    raise ValueError(f'Unknown crop mode {mode!r}: choose one of {MODES}.')
  if mode != 'squash' and short_side < size:
    raise ValueError(f'short_side={short_side} is smaller than the crop size '
                     f'{size}.')


def _shorter_side_to(image: Image.Image, side: int) -> Image.Image:
  width, height = image.size
  scale = side / min(width, height)
  target = (max(side, round(width * scale)), max(side, round(height * scale)))
  if image.format == 'JPEG':
    image.draft('RGB', target)
  image = image.convert('RGB')
  if image.size != target:
    image = image.resize(target, Image.Resampling.BILINEAR)
  return image


def ten_crops(image: np.ndarray, size: int) -> np.ndarray:
  """[h, w, 3] -> [10, size, size, 3]: corners (top-left, top-right,
  bottom-left, bottom-right), centre, then the same five mirrored."""
  height, width, _ = image.shape
  top, left = (height - size) // 2, (width - size) // 2
  corners = [(0, 0), (0, width - size), (height - size, 0),
             (height - size, width - size), (top, left)]
  crops = np.stack([image[y:y + size, x:x + size] for y, x in corners])
  return np.concatenate([crops, crops[:, :, ::-1]])


def load(path: str, mode: str, size: int, short_side: int) -> np.ndarray:
  """Reads an image file as network inputs.

  Args:
    path: a JPEG/PNG/... file.
    mode: 'squash', 'center' or 'ten'.
    size: the network's input side.
    short_side: the shorter side before cropping ('center', 'ten').

  Returns:
    [crops, size, size, 3] uint8 RGB, crops = `CROPS[mode]`.

  Raises:
    images.BadImageError: an unreadable file (the message names it).
  """
  return _load(path, path, mode, size, short_side)


def load_bytes(data: bytes, label: str, mode: str, size: int,
               short_side: int) -> np.ndarray:
  """`load` for encoded image bytes (a dataset record); `label` names them."""
  return _load(io.BytesIO(data), label, mode, size, short_side)


def _load(file, label: str, mode: str, size: int,
          short_side: int) -> np.ndarray:
  try:
    with Image.open(file) as image:
      if image.size == (size, size) and mode != 'ten':
        return np.asarray(image.convert('RGB'))[None]
      if mode == 'squash':
        if image.format == 'JPEG':
          image.draft('RGB', (size, size))
        image = image.convert('RGB').resize((size, size),
                                            Image.Resampling.BILINEAR)
        return np.asarray(image)[None]
      array = np.asarray(_shorter_side_to(image, short_side))
  except FileNotFoundError:
    raise images.BadImageError(f'Cannot read image {label}: no such '
                               'file.') from None
  except (OSError, ValueError, Image.DecompressionBombError,
          SyntaxError) as e:
    raise images.BadImageError(f'Corrupt or unreadable image {label}: '
                               f'{e}') from None
  if mode == 'ten':
    return ten_crops(array, size)
  height, width, _ = array.shape
  top, left = (height - size) // 2, (width - size) // 2
  return array[None, top:top + size, left:left + size]
