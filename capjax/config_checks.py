"""A whole config checked before anything is written or trained.

Every mistake a run would otherwise meet late (after writing the workdir,
after training for an hour) is found here and reported in one line that
names the config key and what to do: ranges of the loop's settings, the
task, the dataset and its builder config, the model's registered names, the
decoder, the evaluators, and that `train.best_metric` is a key those
evaluators produce.
"""

import dataclasses
import os

import ml_collections

from capjax import evaluators
from capjax import parallel
from capjax import tasks
from capjax.data import feature_source
from capjax.data import pipeline
from capjax.data import sources
from capjax.decoding import settings as decoding_settings
from capjax.models import captioners
from capjax.models import cells
from capjax.models import encoders
from capjax.models.encoders import checkpoint

# Metric names (or their endings) where lower is better; the best checkpoint
# minimises them.
LOWER_IS_BETTER = ('perplexity', 'loss', 'nll', 'medr', 'meanr',
                   'bits_per_char')
# Loop settings and the least value each may take.
MINIMUM = {
    'train.num_steps': 1,
    'train.batch_size': 1,
    'train.log_every': 1,
    'train.checkpoint_every': 1,
    'train.keep_checkpoints': 1,
    'train.validate_every': 0,
    'train.prefetch': 0,
    'eval.batch_size': 1,
    'eval.max_examples': 0,
    'dataset.max_len': 1,
    'dataset.min_count': 1,
    'dataset.captions_per_image': 1,
    'dataset.train_captions_per_image': 1,
}


class ConfigError(ValueError):
  """A config value that cannot run; the message names the key."""


def best_mode(config: ml_collections.ConfigDict) -> str:
  """'min' when `train.best_metric` is lower-is-better, else 'max'."""
  lower = config.train.best_metric.endswith(LOWER_IS_BETTER)
  return 'min' if lower else 'max'


def _get(config, key: str):
  node = config
  for part in key.split('.'):
    node = node[part]
  return node


def _one_of(key: str, value, known) -> None:
  if value not in known:
    raise ConfigError(
        f'config.{key}={value!r} is unknown: choose one of {sorted(known)}.')


def _check_precision(config: ml_collections.ConfigDict) -> None:
  """bfloat16 and the padding-free output need the captioner's support."""
  if tasks.name_of(config) != tasks.DEFAULT:
    return
  decoder = captioners.REGISTRY[config.model.decoder]
  fields = {f.name for f in dataclasses.fields(decoder)}
  if config.model.get('dtype', 'float32') != 'float32' and (
      'dtype' not in fields):
    raise ConfigError(
        f'config.model.dtype={config.model.dtype!r}: the {config.model.decoder}'
        ' captioner computes in float32 only; set model.dtype=float32.')
  if config.model.get('output_capacity', 0.0) and not hasattr(decoder,
                                                               'outputs'):
    raise ConfigError(
        f'config.model.output_capacity: the {config.model.decoder} captioner '
        'has no padding-free output layer; set it to 0.')


def _check_other_datasets(config: ml_collections.ConfigDict) -> None:
  """Eval splits 'NAME:SPLIT' must name a registered dataset and config."""
  splits = [('eval.splits', s) for s in config.eval.splits]
  splits.append(('eval.validation_split', config.eval.validation_split))
  for key, split in splits:
    other = pipeline.other_dataset(split or '')
    if other is None:
      continue
    name, split_name = other
    if config.dataset.get('features'):
      raise ConfigError(
          f'config.{key}: {split!r} is another dataset, but the run trains on '
          f'the features of {config.dataset.name} (dataset.features); score '
          'other datasets from pixels.')
    if '/' in name:
      raise ConfigError(
          f'config.{key}: {split!r} names a builder config; name the dataset '
          'alone and set config.dataset.eval_builder_config.')
    if not split_name:
      raise ConfigError(f'config.{key}: {split!r} names no split after the '
                        "':' (e.g. 'simplicity:test').")
    try:
      sources.resolve(name, config.dataset.get('eval_builder_config') or None)
    except ValueError as e:
      raise ConfigError(f'config.{key}: {e}') from e


def _check_text(config: ml_collections.ConfigDict) -> None:
  """Seed 000's caption options and the word-embedding init."""
  _one_of('dataset.rare_words', config.dataset.get('rare_words', 'unk'),
          ('unk', 'drop'))
  path = config.model.get('embedding_init', '')
  uses_embedding = path or not config.model.get('embedding_trainable', True)
  if not uses_embedding:
    return
  if tasks.name_of(config) != tasks.DEFAULT:
    raise ConfigError(
        'config.model.embedding_init / embedding_trainable apply to the '
        f'captioning task only, not {config.task!r}; leave them at their '
        'defaults.')
  decoder = captioners.REGISTRY[config.model.decoder]
  if not getattr(decoder, 'WORD_EMBEDDING', None):
    raise ConfigError(
        f'config.model.decoder={config.model.decoder!r} has no word '
        'embedding for model.embedding_init / embedding_trainable; leave '
        'them at their defaults.')
  if path and not os.path.isfile(path):
    raise ConfigError(
        f'config.model.embedding_init={path!r}: no such file; give a '
        "GloVe-format text file or '' for a random init.")


def _check_encoder_weights(config: ml_collections.ConfigDict) -> None:
  """Converted weights: the captioning task, a checkpoint of the same arch.

  Only the small JSON is read here; the task's meta reads the params (and a
  damaged file stops the run there, still before anything is written).
  """
  encoder = config.model.encoder
  multiplier = config.optimizer.get('encoder_lr_multiplier', 1.0)
  if multiplier < 0:
    raise ConfigError(f'config.optimizer.encoder_lr_multiplier={multiplier} '
                      'must be at least 0 (to freeze the encoder, set '
                      'model.encoder.trainable=False).')
  weights = encoder.get('weights', '')
  if not weights:
    return
  task = tasks.name_of(config)
  if task != 'captioning':
    raise ConfigError(f'config.model.encoder.weights: the {task} task starts '
                      "from random encoders only; set it to ''.")
  try:
    info = checkpoint.read_info(weights)
  except ValueError as e:
    raise ConfigError(f'config.model.encoder.weights: {e}') from e
  if info['arch'] != encoder.name:
    raise ConfigError(
        f'config.model.encoder.weights={weights!r} holds {info["arch"]} '
        f'weights but model.encoder.name={encoder.name!r}: set '
        f'model.encoder.name={info["arch"]} or give {encoder.name} weights.')

def _check_features(config: ml_collections.ConfigDict) -> None:
  """Precomputed features go with the identity encoder, and only with it."""
  folder = config.dataset.get('features', '')
  encoder = config.model.encoder.name
  if folder and encoder != 'identity':
    raise ConfigError(
        f'config.dataset.features={folder!r} holds CNN features, which only '
        "the identity encoder takes: set config.model.encoder.name="
        f"'identity' (not {encoder!r}), or dataset.features='' for pixels.")
  if not folder and encoder == 'identity':
    raise ConfigError(
        "config.model.encoder.name='identity' takes precomputed features, "
        'but config.dataset.features is empty: set it to DIR/features of '
        'python -m capjax.extract_features --config=... --workdir=DIR.')
  if not folder:
    return
  try:
    info = feature_source.read_info(folder)
  except ValueError as e:
    raise ConfigError(f'config.dataset.features: {e}') from e
  made_from = info.get('dataset', {}).get('name')
  if made_from != config.dataset.name:
    raise ConfigError(
        f'config.dataset.features={folder!r} holds features of dataset '
        f'{made_from!r}, not config.dataset.name={config.dataset.name!r}.')
  needed = ['train', *config.eval.splits]
  if config.eval.validation_split:
    needed.append(config.eval.validation_split)
  splits = info.get('splits', {})
  missing = [s for s in dict.fromkeys(needed) if s not in splits]
  if missing:
    raise ConfigError(
        f'config.dataset.features={folder!r} has no {missing[0]!r} split '
        f'(it has {sorted(splits)}); extract it with '
        f'{info.get("command") or feature_source.COMMAND}.')
  if config.dataset.get('feature_grid') and not info.get('grid'):
    raise ConfigError(
        f'config.dataset.feature_grid: {folder} has no grids; extract them '
        'with features.grid=True or set feature_grid=False.')


def check(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` (one line) on the first value that cannot run."""
  for key, least in MINIMUM.items():
    value = _get(config, key)
    if value < least:
      raise ConfigError(f'config.{key}={value} must be at least {least}.')
  _one_of('task', tasks.name_of(config), tasks.REGISTRY)
  _one_of('parallel.mode', config.parallel.mode, parallel.MODES)
  task = tasks.get(config)
  if hasattr(task, 'check_config'):  # a task with data of its own kind
    problem = task.check_config(config)
    if problem:
      raise ConfigError(problem)
  else:  # a registered image-text dataset
    try:
      sources.resolve(config.dataset.name,
                      config.dataset.builder_config or None)
    except ValueError as e:
      raise ConfigError(f'config.dataset: {e}') from e
    _check_features(config)
  _check_other_datasets(config)
  _one_of('model.decoder', config.model.decoder, captioners.REGISTRY)
  _one_of('model.cell', config.model.cell, cells.CELLS)
  _one_of('model.encoder.name', config.model.encoder.name, encoders.ENCODERS)
  _one_of('eval.decode', config.eval.decode, decoding_settings.METHODS)
  _one_of('model.dtype', config.model.get('dtype', 'float32'),
          ('float32', 'bfloat16'))
  _check_precision(config)
  _check_text(config)
  _check_encoder_weights(config)
  try:
    produced = evaluators.metric_names(config, task)
  except ValueError as e:
    raise ConfigError(str(e)) from e
  best = config.train.best_metric
  if best and config.eval.validation_split and best not in produced:
    raise ConfigError(
        f'config.train.best_metric={best!r} is not a metric of the '
        f'evaluators {list(evaluators.names(config, task))} on this dataset; '
        f'choose one of {sorted(produced)}, or \'\' for no best checkpoint.')
