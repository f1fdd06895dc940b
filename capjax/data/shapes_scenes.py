"""Scenes of the built-in `shapes` dataset: sampling, relations, rendering.

A scene is a JSON-ready dict::

  {'width': 64, 'height': 64, 'relation_margin': 3.0,
   'objects': [{'shape': 'circle', 'colour': 'red', 'size': 'small',
                'bbox': [x0, y0, x1, y1]}, ...]}

`bbox` is the object's tight bounding box in pixels (x to the right, y down,
`x1 = x0 + side`). Every shape fills its box, so the box is what a viewer
sees. Spatial relations are defined on the boxes only (`relation_holds`), and
scenes are sampled so that every relation is clear-cut: on each axis two
boxes are either apart by at least `relation_margin` pixels (the relation
holds) or their projections overlap by at least as much (it does not); no pair
sits in between, and no two boxes overlap.
"""

from collections.abc import Mapping, Sequence
import io
import math
from typing import Any

import numpy as np
from PIL import Image
from PIL import ImageDraw

SHAPES = ('circle', 'square', 'triangle', 'diamond', 'star', 'cross')
# Saturated colours, far apart in RGB and from the dark grey background.
COLOURS = {
    'red': (225, 40, 40),
    'orange': (250, 145, 25),
    'yellow': (240, 225, 50),
    'green': (40, 185, 65),
    'blue': (55, 95, 240),
    'purple': (165, 60, 215),
}
SIZES = ('small', 'large')
RELATIONS = ('left', 'right', 'above', 'below')
# Box side as a fraction of the image side: 14-16 px and 24-27 px at 64 px.
SIDE_RANGE = {'small': (14 / 64, 16 / 64), 'large': (24 / 64, 27 / 64)}
# A relation holds when the boxes are apart by at least this (3 px at 64).
MARGIN_FRACTION = 3 / 64
# Objects keep this far from the image border (1 px at 64).
BORDER_FRACTION = 1 / 64
SUPERSAMPLE = 4
COLOUR_JITTER = 12
# Uniform pixel noise in [-8, 8] on every channel (standard deviation 5).
NOISE_AMPLITUDE = 8
BACKGROUND_RANGE = (25, 75)
BACKGROUND_TINT = 6
PLACEMENT_TRIES = 40
SCENE_TRIES = 200


def _star_polygon() -> np.ndarray:
  angles = -math.pi / 2 + np.arange(10) * math.pi / 5
  radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
  return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _cross_polygon() -> np.ndarray:
  w = 0.36  # Half the arm thickness, in units of half the box side.
  return np.array([
      (-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w),
      (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)])


def _fill_box(points: np.ndarray) -> np.ndarray:
  """Stretches `points` [n, 2] so that they span [-1, 1] on both axes."""
  lo, hi = points.min(axis=0), points.max(axis=0)
  return (points - lo) / (hi - lo) * 2 - 1


# Polygons in box coordinates: [-1, 1] on both axes, y down.
_POLYGONS = {
    'square': np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], np.float64),
    'triangle': np.array([(0, -1), (1, 1), (-1, 1)], np.float64),
    'diamond': np.array([(0, -1), (1, 0), (0, 1), (-1, 0)], np.float64),
    'star': _fill_box(_star_polygon()),
    'cross': _cross_polygon().astype(np.float64),
}


def relation_holds(
    relation: str, subject: Sequence[float], reference: Sequence[float],
    margin: float) -> bool:
  """Whether `subject` is `relation` of `reference` ('left' = to the left of).

  Args:
    relation: one of RELATIONS.
    subject: [4] box (x0, y0, x1, y1) of the object the relation is about.
    reference: [4] box of the object it is compared with.
    margin: the gap, in pixels, by which the boxes must be apart.

  Returns:
    True when the boxes are apart on the relation's axis by at least `margin`,
    in the stated direction.
  """
  sx0, sy0, sx1, sy1 = subject
  rx0, ry0, rx1, ry1 = reference
  if relation == 'left':
    return sx1 + margin <= rx0
  if relation == 'right':
    return rx1 + margin <= sx0
  if relation == 'above':
    return sy1 + margin <= ry0
  if relation == 'below':
    return ry1 + margin <= sy0
  raise ValueError(f'Unknown relation {relation!r}; expected one of '
                   f'{RELATIONS}.')


def true_relations(
    subject: Mapping[str, Any], reference: Mapping[str, Any],
    margin: float) -> list[str]:
  """The relations (of RELATIONS) that `subject` has to `reference`."""
  return [r for r in RELATIONS
          if relation_holds(r, subject['bbox'], reference['bbox'], margin)]


def _axis_gap(a0: float, a1: float, b0: float, b1: float) -> float:
  """Distance between intervals (negative: length of their overlap)."""
  return max(b0 - a1, a0 - b1)


def _compatible(a: Sequence[float], b: Sequence[float], margin: float) -> bool:
  """Boxes do not overlap and every relation between them is clear-cut."""
  gaps = (_axis_gap(a[0], a[2], b[0], b[2]), _axis_gap(a[1], a[3], b[1], b[3]))
  clear = all(g >= margin or g <= -margin for g in gaps)
  return clear and max(gaps) >= margin


def _place(
    rng: np.random.Generator, sides: Sequence[float], image_size: int,
    margin: float) -> list[list[float]] | None:
  """Random non-overlapping boxes [n, 4] of the given sides, or None."""
  border = BORDER_FRACTION * image_size
  boxes = []
  for side in sides:
    for _ in range(PLACEMENT_TRIES):
      x0, y0 = rng.uniform(border, image_size - border - side, size=2)
      box = [x0, y0, x0 + side, y0 + side]
      if all(_compatible(box, other, margin) for other in boxes):
        boxes.append(box)
        break
    else:
      return None
  return boxes


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
  return options[int(rng.integers(len(options)))]


def sample_scene(
    rng: np.random.Generator, *, image_size: int = 64, min_objects: int = 1,
    max_objects: int = 3, shapes: Sequence[str] = SHAPES,
    side_range: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
  """Draws a random scene (see the module docstring for its layout).

  Objects are distinct (no two share shape, colour and size), do not overlap,
  and every pair is apart by the relation margin on at least one axis, so at
  least one spatial relation holds between any two of them.

  Args:
    rng: the random generator; the scene is a pure function of its state.
    image_size: side of the square image in pixels.
    min_objects: the fewest objects in a scene (>= 1).
    max_objects: the most objects in a scene.
    shapes: the shape kinds to draw from (a subset of SHAPES).
    side_range: size name -> (smallest, largest) box side as a fraction of
      the image side (default SIDE_RANGE).

  Returns:
    The scene dict, JSON-ready.
  """
  unknown = sorted(set(shapes) - set(SHAPES))
  if unknown or not shapes:
    raise ValueError(f'Unknown shapes {unknown}: choose among {SHAPES}.')
  side_range = side_range or SIDE_RANGE
  if not 1 <= min_objects <= max_objects:
    raise ValueError(f'Need 1 <= min_objects <= max_objects, got '
                     f'{min_objects}, {max_objects}.')
  margin = MARGIN_FRACTION * image_size
  count = int(rng.integers(min_objects, max_objects + 1))
  for _ in range(SCENE_TRIES):
    kinds = set()
    while len(kinds) < count:
      kinds.add((_pick(rng, tuple(shapes)), _pick(rng, tuple(COLOURS)),
                 _pick(rng, SIZES)))
    objects = [dict(shape=s, colour=c, size=z) for s, c, z in sorted(kinds)]
    rng.shuffle(objects)
    sides = [rng.uniform(*side_range[o['size']]) * image_size for o in objects]
    boxes = _place(rng, sides, image_size, margin)
    if boxes is not None:
      for obj, box in zip(objects, boxes):
        obj['bbox'] = [round(float(v), 3) for v in box]
      return {'width': image_size, 'height': image_size,
              'relation_margin': margin, 'objects': objects}
  raise RuntimeError(f'Could not place {count} objects in a {image_size}-px '
                     'image; use a larger image_size or fewer objects.')


def render(scene: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
  """Draws a scene: anti-aliased shapes on a noisy dark background.

  Args:
    scene: a scene dict from `sample_scene`.
    rng: random generator for the background, colour jitter and noise.

  Returns:
    image: [height, width, 3] uint8.
  """
  width, height = scene['width'], scene['height']
  background = rng.integers(*BACKGROUND_RANGE) + rng.integers(
      -BACKGROUND_TINT, BACKGROUND_TINT + 1, size=3)
  canvas = Image.new('RGB', (width * SUPERSAMPLE, height * SUPERSAMPLE),
                     tuple(int(v) for v in background))
  draw = ImageDraw.Draw(canvas)
  for obj in scene['objects']:
    colour = np.array(COLOURS[obj['colour']]) + rng.integers(
        -COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
    fill = tuple(int(v) for v in np.clip(colour, 0, 255))
    x0, y0, x1, y1 = (v * SUPERSAMPLE for v in obj['bbox'])
    if obj['shape'] == 'circle':
      draw.ellipse([x0, y0, x1, y1], fill=fill)
      continue
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    half = np.array([(x1 - x0) / 2, (y1 - y0) / 2])
    points = centre + _POLYGONS[obj['shape']] * half
    draw.polygon([tuple(p) for p in points], fill=fill)
  image = canvas.reduce(SUPERSAMPLE)  # Box filter: exact pixel coverage.
  noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1,
                       size=(height, width, 3), dtype=np.int16)
  return np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
  """PNG bytes of `image`: [height, width, 3] uint8.

  Stored uncompressed: the noise leaves little to compress, and such a PNG
  encodes and decodes about twice as fast.
  """
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG', compress_level=0)
  return buffer.getvalue()
