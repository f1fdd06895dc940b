"""Using a trained workdir: caption image files, re-run its evaluation.

Everything here reads a checkpoint's own config and task meta (its
vocabulary), so a model is rebuilt exactly as it was trained, whatever its
task. The command-line fronts are
`capjax.caption` and `capjax.evaluate --workdir`.
"""

import contextlib
import os

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import checkpointing
from capjax import evaluators
from capjax import parallel
from capjax import tasks
from capjax.data import images as images_lib
from capjax.evaluators import captions as captions_evaluator

CAPTIONING_TASK = 'captioning'  # the one task whose models write captions
# What to run instead of `caption` on a workdir of another task.
OTHER_COMMANDS = {
    'retrieval': 'query it with python -m capjax.retrieve '
                 '--workdir={workdir} --image=FILE',
    'multilabel': 'tag images with python -m capjax.story or score it with '
                  'python -m capjax.tag_table --workdirs={workdir}',
    'language_model': 'write stories with it through python -m '
                      'capjax.story --story_workdir={workdir}',
}


@contextlib.contextmanager
def _checkpoint_fits(workdir: str):
  """Turns Flax's missing/misshapen parameter errors into one clear error."""
  try:
    yield
  except (flax.errors.ScopeParamNotFoundError,
          flax.errors.ScopeParamShapeError) as e:
    detail = str(e).split(' (https://')[0]
    raise checkpointing.CheckpointMismatchError(
        f'The checkpoint of {workdir} does not fit the model its own config '
        f'builds with this capjax ({detail}). It was written by another '
        'capjax version: evaluate it with that version, or train again.'
    ) from e


def with_beam_size(config: ml_collections.ConfigDict, beam_size: int):
  """A copy of `config` decoding greedily (1) or with a beam (> 1).

  0 keeps the config's own decoder.
  """
  config = ml_collections.ConfigDict(config.to_dict())
  if beam_size == 1:
    config.eval.decode = 'greedy'
  elif beam_size > 1:
    config.eval.decode = 'beam'
    config.eval.beam_size = beam_size
  return config


def restore(workdir: str, which: str = 'latest', beam_size: int = 0):
  """`(config, meta, task, model, params, step)` of a workdir's checkpoint.

  Args:
    workdir: a training workdir.
    which: 'latest' or 'best' checkpoint.
    beam_size: 0 keeps the config's decoder; 1 is greedy; more is beam search.
  """
  config, meta, params, step = checkpointing.restore_trained(workdir, which)
  config = with_beam_size(config, beam_size)
  task = tasks.get(config)
  return config, meta, task, task.create_model(config, meta), params, step


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

  Raises:
    images_lib.BadImageError: a missing or unreadable file (named).
    FileNotFoundError: no checkpoint in the workdir.
    ValueError: the workdir's model does not caption images (a retrieval,
      tag classifier or story model) or reads features, not pixels.
    checkpointing.CheckpointMismatchError: the checkpoint does not fit the
      model its config builds.
  """
  config, meta, task, model, params, _ = restore(workdir, which, beam_size)
  kind = config.get('task', CAPTIONING_TASK)
  if kind != CAPTIONING_TASK:
    instead = OTHER_COMMANDS.get(kind, 'use a captioning workdir')
    raise ValueError(
        f'{workdir} holds a {kind!r} model (config.task), which does not '
        f'caption images: {instead.format(workdir=workdir)}.')
  if config.dataset.get('features'):
    raise ValueError(
        f'{workdir} was trained on precomputed features '
        f'({config.dataset.features}), not pixels: it cannot caption image '
        'files; evaluate it with python -m capjax.evaluate instead.')
  vocab = task.vocab_of(meta)
  size = (config.dataset.image_size,) * 2
  images = np.stack([images_lib.load_file(p, size) for p in paths])
  decode = jax.jit(lambda p, x, r: captions_evaluator.decode_images(
      config, vocab, model, p, x, r))
  captions = []
  rng = jax.random.key(config.seed + 1)
  for start in range(0, len(images), batch_size):
    chunk = images[start : start + batch_size]
    padded = np.zeros((batch_size,) + chunk.shape[1:], chunk.dtype)
    padded[: len(chunk)] = chunk
    with _checkpoint_fits(workdir):
      ids = jax.device_get(
          decode(params, jnp.asarray(padded), jax.random.fold_in(rng, start))
      )
    captions.extend(vocab.decode(row) for row in ids[: len(chunk)])
  return captions


def evaluate_workdir(workdir: str, split: str, which: str = 'latest',
                     beam_size: int = 0) -> dict[str, float]:
  """Re-runs a workdir's evaluators on `split` from its checkpoint.

  Writes `<workdir>/eval/<split>_metrics.json` and each evaluator's files.
  """
  config, meta, task, model, params, step = restore(workdir, which, beam_size)
  print(f'Evaluating {workdir} ({which} checkpoint, step {step}) on {split} '
        f'with {config.eval.decode} decoding.')
  checkpointing.check_writable(os.path.join(workdir, evaluators.EVAL_DIR))
  mesh = parallel.make_mesh(config.parallel.num_devices)
  with _checkpoint_fits(workdir):
    suite = evaluators.Suite(config, task, model, meta, split, mesh)
    metrics = suite.run(params)
  suite.write(workdir)
  return metrics
