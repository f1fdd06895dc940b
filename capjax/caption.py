r"""Caption image files with a trained workdir.

  python -m capjax.caption --workdir=runs/shapes img1.png img2.jpg
  python -m capjax.caption --workdir=runs/shapes --beam_size=3 img.png

Prints one `path<TAB>caption` line per image, using the checkpoint's own
config (image size, decoder) and vocabulary.
"""

import sys

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from capjax import checkpointing
from capjax import evaluation
from capjax.data import vocab as vocab_lib
from capjax.models import captioning

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training workdir.')
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'latest', ['latest', 'best'], 'Which checkpoint to use.'
)
_BEAM_SIZE = flags.DEFINE_integer(
    'beam_size', 0, 'Beam width (0: the config\'s decoder; 1: greedy).'
)
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size', 16, 'Images decoded together (the last batch is padded).'
)
flags.mark_flag_as_required('workdir')


def read_image(path: str, size: int) -> np.ndarray:
  """Reads an image file as [size, size, 3] uint8.

  Raises:
    ValueError: one line naming the file when it is missing or unreadable.
  """
  try:
    with Image.open(path) as image:
      return np.asarray(
          image.convert('RGB').resize((size, size), Image.Resampling.BILINEAR)
      )
  except FileNotFoundError:
    raise ValueError(f'Image file {path} does not exist.') from None
  except (UnidentifiedImageError, OSError) as e:
    raise ValueError(
        f'Image file {path} is not a readable image ({e.__class__.__name__}).'
    ) from None


def caption_files(
    workdir: str,
    paths: list[str],
    *,
    which: str = 'latest',
    beam_size: int = 0,
    batch_size: int = 16,
) -> list[str]:
  """Captions image files with a workdir's checkpoint.

  Args:
    workdir: a training workdir.
    paths: image files.
    which: 'latest' or 'best' checkpoint.
    beam_size: 0 keeps the config's decoder; 1 is greedy; more is beam search.
    batch_size: images per decoding batch.

  Returns:
    One caption per path.
  """
  config, vocab_json, params, _ = checkpointing.restore_trained(workdir, which)
  vocab = vocab_lib.Vocab.from_json(vocab_json)
  config = ml_collections.ConfigDict(config.to_dict())
  if beam_size == 1:
    config.eval.decode = 'greedy'
  elif beam_size > 1:
    config.eval.decode = 'beam'
    config.eval.beam_size = beam_size
  model = captioning.create(config, len(vocab))
  images = np.stack([read_image(p, config.dataset.image_size) for p in paths])
  decode = jax.jit(
      lambda p, x, r: evaluation.decode_images(config, vocab, model, p, x, r)
  )
  captions = []
  rng = jax.random.key(config.seed + 1)
  for start in range(0, len(images), batch_size):
    chunk = images[start : start + batch_size]
    padded = np.zeros((batch_size,) + chunk.shape[1:], chunk.dtype)
    padded[: len(chunk)] = chunk
    ids = jax.device_get(
        decode(params, jnp.asarray(padded), jax.random.fold_in(rng, start))
    )
    captions.extend(vocab.decode(row) for row in ids[: len(chunk)])
  return captions


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError('Name at least one image file to caption.')
  try:
    captions = caption_files(
        _WORKDIR.value, paths, which=_CHECKPOINT.value,
        beam_size=_BEAM_SIZE.value, batch_size=_BATCH_SIZE.value,
    )
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  for path, caption in zip(paths, captions):
    print(f'{path}\t{caption}')


if __name__ == '__main__':
  app.run(main)
