"""Image -> hashtags -> story: the seed's two phases joined, and a gallery.

`tell` tags each image with a trained tag model (`tagging`), then writes a
story with a trained character LM (`stories`) primed with the image's top
tag (`'#dog '`). `write_gallery` puts image, tags (with a tag attention map
each, for soft attention) and story side by side in one HTML page.
"""

import base64
import dataclasses
import html
import io

import jax
import numpy as np

from capjax import atomic_write
from capjax import report
from capjax import stories
from capjax import tagging
from capjax.data import images as images_lib


@dataclasses.dataclass
class Told:
  """One image's result.

  Attributes:
    path: the image file.
    image: [H, W, 3] uint8, as the tag model saw it.
    tags: the emitted tags, without '#'.
    seed: the text the story was primed with.
    story: the `length` characters that follow the seed.
    attention: [len(tags), cells] per-tag attention, or None.
  """

  path: str
  image: np.ndarray
  tags: list[str]
  seed: str
  story: str
  attention: np.ndarray | None


def seed_text(tags: list[str]) -> str:
  """The story's priming text: the top tag as a paragraph starts."""
  return f'#{tags[0]} ' if tags else stories.DEFAULT_SEED


def tell(tags_workdir: str, story_workdir: str, paths: list[str], *,
         length: int = 500, seed: int = 0, temperature: float = 0.8,
         top_k: int = 0, top_p: float = 1.0, batch_size: int = 16,
         tags_checkpoint: str = 'latest',
         story_checkpoint: str = 'latest') -> list[Told]:
  """Tags and a story for each image file.

  `tags_checkpoint` and `story_checkpoint` ('latest' or 'best') choose each
  workdir's checkpoint, as `capjax.story`'s flags of those names do.

  Raises:
    images_lib.BadImageError: an unreadable image (named).
    FileNotFoundError: a workdir without a checkpoint (named).
  """
  tagger, tag_params = tagging.from_workdir(
      tags_workdir, tags_checkpoint, flag='--tags_checkpoint')
  _, chars, model, story_params = stories.load_workdir(
      story_workdir, story_checkpoint, flag='--story_checkpoint')
  size = (tagger.config.dataset.image_size,) * 2
  pictures = np.stack([images_lib.load_file(p, size) for p in paths])
  tag_sets = tagging.tag_source(
      tagger, tag_params, _Images(pictures), batch_size)
  writer = stories.StoryWriter(model, chars, length=length, top_k=top_k,
                               top_p=top_p)
  seeds = [seed_text(t.tags) for t in tag_sets]
  texts = []
  rng = jax.random.key(seed)
  for start in range(0, len(seeds), batch_size):
    chunk = seeds[start:start + batch_size]
    padded = chunk + [chunk[-1]] * (batch_size - len(chunk))
    texts.extend(writer.write(story_params, padded,
                              jax.random.fold_in(rng, start),
                              temperature=temperature)[:len(chunk)])
  return [Told(path=p, image=img, tags=t.tags, seed=s, story=text,
               attention=t.attention)
          for p, img, t, s, text in zip(paths, pictures, tag_sets, seeds,
                                        texts)]


class _Images:
  """Image files as the random-access source `tagging.tag_source` reads."""

  def __init__(self, pictures: np.ndarray):
    self._pictures = pictures

  def __len__(self) -> int:
    return len(self._pictures)

  def image(self, index: int) -> np.ndarray:
    return self._pictures[index]


def format_text(results: list[Told]) -> str:
  """Per image: its path, its hashtags, then seed + story."""
  blocks = []
  for r in results:
    blocks.append(f'{r.path}\n  {" ".join("#" + t for t in r.tags)}\n  '
                  f'{(r.seed + r.story).strip()}')
  return '\n\n'.join(blocks)


def write_gallery(path: str, results: list[Told], title: str = '') -> str:
  """One HTML page: per image a tile (image, tags, tag attention) and story."""
  rows = []
  for r in results:
    tags = ' '.join(f'#{t}' for t in r.tags)
    attention = None if r.attention is None else [r.attention]
    tile = report.gallery_image([r.image], [tags], attention=attention)
    buffer = io.BytesIO()
    tile.save(buffer, format='PNG')
    data = base64.b64encode(buffer.getvalue()).decode('ascii')
    rows.append(
        '<tr><td><img src="data:image/png;base64,' + data + '"></td>'
        f'<td><b>{html.escape(tags)}</b><p>{html.escape(r.seed)}'
        f'{html.escape(r.story)}</p><small>{html.escape(r.path)}</small>'
        '</td></tr>')
  page = ('<!doctype html><meta charset="utf-8">'
          f'<title>{html.escape(title)}</title><style>body{{font-family:'
          'sans-serif}td{vertical-align:top;padding:6px}p{max-width:40em;'
          'white-space:pre-wrap}</style>'
          f'<h1>{html.escape(title)}</h1><table>' + '\n'.join(rows)
          + '</table>')
  atomic_write.write_bytes(path, page.encode('utf-8'))
  return path
