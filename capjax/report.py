"""Caption galleries: a PNG grid and an HTML page, with attention maps.

Each tile shows an image, its generated caption and, when the dataset can
judge captions, a green (correct) or red (wrong) bar. For attention models a
row of small maps shows where the decoder looked for each word.
"""

import base64
import html
import io
import json
import math
import os
import textwrap
from typing import Sequence

import jax
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from capjax import atomic_write

TILE = 160  # pixels of the image in a tile
MAP = 48  # pixels of one attention map
MAX_MAPS = 6  # words with an attention map per tile
TEXT_LINES = 5
LINE_HEIGHT = 14
COLUMNS = 4
GREEN = (40, 160, 60)
RED = (200, 50, 40)
GREY = (140, 140, 140)
# Words whose attention maps say little: the gallery shows the others.
FUNCTION_WORDS = frozenset(
    'a an the and of to is are there it its in on at with one two three '
    'shape shapes'.split()
)


def _font(size: int = 12):
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow without FreeType sizes
    return ImageFont.load_default()


def _as_pil(image: np.ndarray, size: int) -> Image.Image:
  array = np.asarray(image)
  if array.dtype != np.uint8:
    array = np.clip(array, 0, 255).astype(np.uint8)
  return Image.fromarray(array).convert('RGB').resize(
      (size, size), Image.Resampling.BILINEAR
  )


def attention_overlay(
    image: np.ndarray, alpha: np.ndarray, size: int = MAP
) -> Image.Image:
  """An image darkened where attention is low.

  Args:
    image: [height, width, 3] uint8.
    alpha: [cells] attention weights over a square grid (cells = side^2,
      extra non-square cells are ignored).
    size: output side in pixels.

  Returns:
    A `size` x `size` RGB picture.
  """
  side = int(math.isqrt(alpha.shape[-1]))
  weights = np.asarray(alpha[: side * side], np.float32).reshape(side, side)
  weights = weights / max(float(weights.max()), 1e-9)
  mask = Image.fromarray((weights * 255).astype(np.uint8)).resize(
      (size, size), Image.Resampling.BILINEAR
  )
  base = np.asarray(_as_pil(image, size), np.float32)
  light = np.asarray(mask, np.float32)[..., None] / 255.0
  return Image.fromarray((base * (0.2 + 0.8 * light)).astype(np.uint8))


def chosen_words(caption: str, limit: int = MAX_MAPS) -> list[tuple[int, str]]:
  """(position, word) of the first content words of a caption."""
  words = caption.split()
  chosen = [(i, w) for i, w in enumerate(words) if w not in FUNCTION_WORDS]
  return chosen[:limit]


def _tile(image, caption, correct, alpha, font) -> Image.Image:
  chosen = [] if alpha is None else [
      (i, w) for i, w in chosen_words(caption) if i < alpha.shape[0]]
  maps = len(chosen)
  map_rows = math.ceil(maps / 3) if maps else 0
  height = TILE + TEXT_LINES * LINE_HEIGHT + 8 + map_rows * (MAP + 14)
  tile = Image.new('RGB', (TILE + 8, height), 'white')
  tile.paste(_as_pil(image, TILE), (4, 4))
  draw = ImageDraw.Draw(tile)
  colour = GREY if correct is None else (GREEN if correct else RED)
  draw.rectangle([0, 0, TILE + 7, 3], fill=colour)
  lines = textwrap.wrap(caption, width=26)[:TEXT_LINES]
  for i, line in enumerate(lines):
    draw.text((4, TILE + 6 + i * LINE_HEIGHT), line, fill='black', font=font)
  top = TILE + 8 + TEXT_LINES * LINE_HEIGHT
  for k, (position, word) in enumerate(chosen):
    x = 4 + (k % 3) * (MAP + 6)
    y = top + (k // 3) * (MAP + 14)
    tile.paste(attention_overlay(image, alpha[position]), (x, y))
    draw.text((x, y + MAP), word[:8], fill='black', font=font)
  return tile


def gallery_image(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    correct: Sequence[bool | None] | None = None,
    attention: Sequence[np.ndarray] | None = None,
    title: str = '',
) -> Image.Image:
  """Lays tiles out in a grid.

  Args:
    images: [height, width, 3] uint8 each.
    captions: one generated caption per image.
    correct: per image True/False (or None when unknown).
    attention: per image [words, cells] attention weights, or None.
    title: a line of text above the grid.

  Returns:
    The gallery as a PIL image.
  """
  font = _font()
  correct = correct or [None] * len(images)
  tiles = [
      _tile(img, cap, ok, None if attention is None else attention[i], font)
      for i, (img, cap, ok) in enumerate(zip(images, captions, correct))
  ]
  if not tiles:
    raise ValueError('A gallery needs at least one image.')
  columns = min(COLUMNS, len(tiles))
  rows = math.ceil(len(tiles) / columns)
  width, height = tiles[0].width, max(t.height for t in tiles)
  header = 24 if title else 0
  canvas = Image.new(
      'RGB', (columns * width, rows * height + header), (235, 235, 235)
  )
  if title:
    ImageDraw.Draw(canvas).text((6, 5), title, fill='black', font=_font(14))
  for i, tile in enumerate(tiles):
    left = (i % columns) * width
    canvas.paste(tile, (left, header + (i // columns) * height))
  return canvas


def _png_bytes(picture: Image.Image) -> bytes:
  buffer = io.BytesIO()
  picture.save(buffer, format='PNG')
  return buffer.getvalue()


def write_gallery(
    path_prefix: str,
    *,
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    correct: Sequence[bool | None] | None = None,
    attention: Sequence[np.ndarray] | None = None,
    title: str = '',
) -> tuple[str, str]:
  """Writes `<path_prefix>.png` and `<path_prefix>.html`.

  Returns:
    The two paths.
  """
  picture = gallery_image(images, captions, correct, attention, title)
  png_path, html_path = path_prefix + '.png', path_prefix + '.html'
  atomic_write.write_bytes(png_path, _png_bytes(picture))
  correct = correct or [None] * len(images)
  rows = []
  for i, (image, caption, ok) in enumerate(zip(images, captions, correct)):
    alpha = None if attention is None else attention[i]
    tile = _tile(image, caption, ok, alpha, _font())
    data = base64.b64encode(_png_bytes(tile)).decode('ascii')
    verdict = '' if ok is None else ('correct' if ok else 'wrong')
    rows.append(
        f'<figure><img src="data:image/png;base64,{data}">'
        f'<figcaption>{html.escape(caption)} '
        f'<b class="{verdict}">{verdict}</b></figcaption></figure>'
    )
  page = (
      '<!doctype html><meta charset="utf-8">'
      f'<title>{html.escape(title)}</title>'
      '<style>body{font-family:sans-serif}figure{display:inline-block;'
      'width:180px;vertical-align:top}.correct{color:green}'
      '.wrong{color:red}</style>'
      f'<h1>{html.escape(title)}</h1>' + '\n'.join(rows)
  )
  atomic_write.write_bytes(html_path, page.encode('utf-8'))
  return png_path, html_path


SUMMARY_KEYS = (
    'caption_accuracy', 'Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR',
    'ROUGE_L', 'CIDEr', 'SPICE', 'perplexity', 'num_images',
)


def format_metrics_table(results: dict[str, dict[str, float]]) -> str:
  """{split: metrics} -> a fixed-width table, known keys first."""
  splits = list(results)
  keys = [k for k in SUMMARY_KEYS if any(k in results[s] for s in splits)]
  keys += sorted({k for s in splits for k in results[s]} - set(keys))
  width = max(len(k) for k in keys) + 2
  # Columns of 12, wider for a long split name ('simplicity:test').
  cols = [max(12, len(s) + 2) for s in splits]
  lines = ['metric'.ljust(width)
           + ''.join(s.rjust(c) for s, c in zip(splits, cols))]
  for key in keys:
    cells = []
    for split, col in zip(splits, cols):
      value = results[split].get(key)
      if value is None:
        cells.append('-'.rjust(col))
      elif key == 'num_images':
        cells.append(f'{int(value):{col}d}')
      else:
        cells.append(f'{value:{col}.4f}')
    lines.append(key.ljust(width) + ''.join(cells))
  return '\n'.join(lines)


def print_summary(
    results: dict[str, dict[str, float]], workdir: str, num_captions: int = 5
) -> None:
  """Prints the metrics table, a few captions and where the report is."""
  if jax.process_index() != 0:
    return
  print('\n' + format_metrics_table(results))
  eval_dir = os.path.join(workdir, 'eval')
  for split in results:
    path = os.path.join(eval_dir, f'{split}_captions.json')
    if os.path.exists(path):
      with open(path) as f:
        captions = json.load(f)
      print(f'\nSome {split} captions:')
      for item in captions[:num_captions]:
        print(f'  image {item["image_id"]}: {item["caption"]}')
    gallery = os.path.join(eval_dir, f'{split}_gallery.png')
    if os.path.exists(gallery):
      print(f'\n{split} gallery: {gallery} (and .html)')
  print(f'Metrics and captions: {eval_dir}/')
