"""Retrieval pictures: query results, and word-region alignments (seed 003).

* `query_gallery`: one row per query (its text, then the top images with
  their scores; a green frame marks the query's own image, red another);
* `word_region_gallery`: per image, each word of its caption under a copy
  of the image lit only in the word's best region (a grid cell, or the
  whole image), as in the figures of Karpathy and Fei-Fei.
"""

import io
import math
import textwrap
from typing import Sequence

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from capjax import atomic_write

THUMB = 96  # pixels of an image in a row of results
WORD_TILE = 72  # pixels of an image in a word-region map
TEXT_WIDTH = 200  # pixels of the query text column
WORDS_PER_ROW = 8
GREEN = (40, 160, 60)
RED = (200, 50, 40)
YELLOW = (250, 220, 40)
GREY = (150, 150, 150)


def _font(size: int = 12):
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow without FreeType sizes
    return ImageFont.load_default()


def _thumb(image: np.ndarray, size: int) -> Image.Image:
  return Image.fromarray(np.asarray(image, np.uint8)).convert('RGB').resize(
      (size, size), Image.Resampling.BILINEAR)


def write_png(path: str, picture: Image.Image) -> str:
  """Saves a picture atomically; returns the path."""
  buffer = io.BytesIO()
  picture.save(buffer, format='PNG')
  atomic_write.write_bytes(path, buffer.getvalue())
  return path


def query_gallery(rows: Sequence[tuple[str, Sequence[np.ndarray],
                                       Sequence[float], Sequence[bool]]],
                  title: str = '') -> Image.Image:
  """Rows of (query text, top images [H, W, 3] uint8, scores, is_truth).

  is_truth per image: True (green frame), False (red) or None (grey: no
  ground truth, e.g. a free-text query).
  """
  if not rows:
    raise ValueError('A query gallery needs at least one query.')
  font = _font()
  top = max(len(r[1]) for r in rows)
  row_height = THUMB + 26
  header = 22 if title else 0
  canvas = Image.new('RGB', (TEXT_WIDTH + top * (THUMB + 8),
                             header + len(rows) * row_height), 'white')
  draw = ImageDraw.Draw(canvas)
  if title:
    draw.text((6, 4), title, fill='black', font=_font(14))
  for r, (text, images, scores, truth) in enumerate(rows):
    y = header + r * row_height
    for i, line in enumerate(textwrap.wrap(text, width=30)[:7]):
      draw.text((4, y + 4 + 14 * i), line, fill='black', font=font)
    for k, (image, score, ok) in enumerate(zip(images, scores, truth)):
      x = TEXT_WIDTH + k * (THUMB + 8)
      draw.rectangle([x - 3, y + 1, x + THUMB + 2, y + THUMB + 6],
                     fill=GREY if ok is None else (GREEN if ok else RED))
      canvas.paste(_thumb(image, THUMB), (x, y + 4))
      draw.text((x, y + THUMB + 9), f'{k + 1}: {score:.3f}', fill='black',
                font=font)
  return canvas


def _region_box(region: int, num_cells: int, size: int) -> list[int]:
  """Pixel box of a region: a cell of the square grid, or the whole image."""
  side = math.isqrt(num_cells)
  if region >= side * side:
    return [1, 1, size - 2, size - 2]
  cell = size / side
  row, col = divmod(int(region), side)
  return [int(col * cell), int(row * cell), int((col + 1) * cell) - 1,
          int((row + 1) * cell) - 1]


def word_region_gallery(
    maps: Sequence[tuple[np.ndarray, Sequence[str], Sequence[int], int]]
) -> Image.Image:
  """Each word under its image, lit in its best region.

  Args:
    maps: per image (image [H, W, 3] uint8, words, best region per word,
      number of grid cells; region == cells is the whole image).

  Returns:
    The picture.
  """
  if not maps:
    raise ValueError('A word-region gallery needs at least one image.')
  font = _font()
  tile_h = WORD_TILE + 16
  blocks = []
  for image, words, regions, cells in maps:
    lines = max(1, math.ceil(len(words) / WORDS_PER_ROW))
    block = Image.new('RGB', (WORDS_PER_ROW * (WORD_TILE + 4) + 4,
                              lines * tile_h + 4), 'white')
    draw = ImageDraw.Draw(block)
    base = _thumb(image, WORD_TILE)
    dim = Image.fromarray((np.asarray(base) * 0.35).astype(np.uint8))
    for k, (word, region) in enumerate(zip(words, regions)):
      box = _region_box(int(region), cells, WORD_TILE)
      tile = dim.copy()
      tile.paste(base.crop((box[0], box[1], box[2] + 1, box[3] + 1)),
                 (box[0], box[1]))
      ImageDraw.Draw(tile).rectangle(box, outline=YELLOW, width=1)
      x = 4 + (k % WORDS_PER_ROW) * (WORD_TILE + 4)
      y = 2 + (k // WORDS_PER_ROW) * tile_h
      block.paste(tile, (x, y))
      draw.text((x, y + WORD_TILE + 1), word[:11], fill='black', font=font)
    blocks.append(block)
  width = max(b.width for b in blocks)
  canvas = Image.new('RGB', (width, sum(b.height + 6 for b in blocks)),
                     (225, 225, 225))
  y = 0
  for block in blocks:
    canvas.paste(block, (0, y))
    y += block.height + 6
  return canvas
