r"""Input pipeline speed: `capjax.benchmark input`.

  python -m capjax.benchmark input --datasets=shapes,flickr8k \
      --manual_dir=../shared/data/flickr8k_1k

For each dataset (the built-in `shapes`; `flickr8k` read from the official
Flickr8k layout in `--manual_dir`, by default ../shared/data/flickr8k_1k):

* `prepare`: seconds to prepare it into a fresh TFDS data_dir (near 0 when
  `--data_dir` already holds it), and to index its captions and build the
  vocabulary;
* `pipeline`: images/s and captions/s of the training pipeline alone (host
  side, no model), with every image read and decoded (`uncached`) and, when
  the split fits in memory, with the decoded-image cache warm (`cached`);
* `train_run`: a training run's step time fed by that pipeline (as
  `train.train_and_evaluate` builds it: background prefetch, the config's
  captions per image) against the same run fed from batches already in
  memory, in alternating chunks of `--train_steps` steps; the pipeline keeps
  up when `pipeline_over_memory` is near 1. The model is that of
  `--input_config` (default `configs/captioning/shapes.py`, the demo model).
"""

import functools
import importlib.util
import os
import shutil
import statistics
import tempfile
import time

import jax

from capjax import train
from capjax.data import pipeline
from capjax.data import sources
from capjax.data import vocab as vocab_lib
from capjax.tasks import captioning as captioning_task

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
DEFAULT_MANUAL_DIR = os.path.join(
    ROOT, '..', 'shared', 'data', 'flickr8k_1k')
PHOTO_DATASETS = ('flickr8k', 'coco', 'flickr30k', 'karpathy')


def load_config(spec: str):
  """'shapes:tiny' -> get_config('tiny') of configs/captioning/shapes.py.

  A name without a family folder is looked up under configs/captioning/.
  """
  name, _, arg = spec.partition(':')
  if '/' not in name:
    name = f'captioning/{name}'
  path = os.path.join(ROOT, 'configs', f'{name}.py')
  if not os.path.exists(path):
    raise FileNotFoundError(
        f'--input_config={spec}: no config file {os.path.normpath(path)}.')
  module_spec = importlib.util.spec_from_file_location(
      '_config_' + name.replace('/', '_'), path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def _count(batch: dict) -> tuple[int, int]:
  """(images, real captions) in a training batch."""
  images = len(batch['image'])
  if 'caption_mask' in batch:
    return images, int(batch['caption_mask'].sum())
  return images, images


def pipeline_rates(batches, count: int) -> tuple[float, float]:
  """(images/s, captions/s) of `count` batches after the first one."""
  next(batches)  # Start-up (threads, workers) is not timed.
  images = captions = 0
  start = time.perf_counter()
  for _ in range(count):
    i, c = _count(next(batches))
    images += i
    captions += c
  seconds = time.perf_counter() - start
  return images / seconds, captions / seconds


class _TrainRun:
  """A model, optimizer and jitted train step for batches of one shape."""

  def __init__(self, config, vocab_size: int, example: dict):
    run = train.setup(
        config, captioning_task.synthetic_meta(vocab_size), example)
    self.state, self.rng = run.state, run.dropout_rng
    self.step = jax.jit(run.step_fn, donate_argnums=(0,))

  def seconds_per_step(self, batches, steps: int) -> float:
    """Runs `steps` steps as the train loop does (asynchronous dispatch)."""
    start = time.perf_counter()
    for _ in range(steps):
      batch = jax.device_put(next(batches))
      self.state, _ = self.step(self.state, batch, self.rng)
    jax.block_until_ready(self.state)
    return (time.perf_counter() - start) / steps


def _model_inputs(batch: dict) -> dict:
  """The arrays of a batch that the train step reads."""
  return {k: v for k, v in batch.items() if k != 'image_id'}


def train_run_record(config, source, vocab, steps: int, repeats: int) -> dict:
  """Step time with the real pipeline vs. from memory (see module docstring)."""
  tc = config.train
  make = functools.partial(
      pipeline.train_batches, source, vocab, batch_size=tc.batch_size,
      max_len=config.dataset.max_len,
      captions_per_image=config.dataset.train_captions_per_image,
      seed=config.seed, prefetch=tc.prefetch)
  live = map(_model_inputs, make(start_step=0))
  memory = [_model_inputs(b) for b, _ in zip(make(start_step=0),
                                             range(steps))]
  run = _TrainRun(config, len(vocab), memory[0])
  cycle = lambda: (memory[i % steps] for i in range(steps))  # pylint: disable=unnecessary-lambda-assignment
  run.seconds_per_step(cycle(), min(steps, 2))  # compile and warm up
  run.seconds_per_step(live, 1)
  from_pipeline, from_memory = [], []
  for _ in range(repeats):
    from_pipeline.append(run.seconds_per_step(live, steps))
    from_memory.append(run.seconds_per_step(cycle(), steps))
  pipeline_s = statistics.median(from_pipeline)
  memory_s = statistics.median(from_memory)
  images, captions = _count(memory[0])
  return dict(
      stage='train_run', model=f'{config.model.decoder}/{config.model.cell}',
      encoder=config.model.encoder.name, batch_images=images,
      batch_captions=captions, steps=steps, repeats=repeats,
      step_ms_pipeline=1e3 * pipeline_s, step_ms_memory=1e3 * memory_s,
      pipeline_over_memory=pipeline_s / memory_s,
      captions_per_s=captions / pipeline_s,
      images_per_s=images / pipeline_s,
  )


def dataset_records(dataset: str, config: dict, data_dir: str) -> list[dict]:
  """Every record of one dataset (prepare, pipeline, train_run)."""
  base = dataset.split('/')[0]
  manual_dir = None
  if base in PHOTO_DATASETS:
    manual_dir = os.path.normpath(config.get('manual_dir')
                                  or DEFAULT_MANUAL_DIR)
  run_config = load_config(config.get('input_config') or 'shapes')
  run_config.dataset.name = base
  if '/' in dataset:
    run_config.dataset.builder_config = dataset.split('/', 1)[1]
  image_size = config.get('image_size')
  if image_size is None and base not in PHOTO_DATASETS:
    image_size = run_config.dataset.image_size
  args = dict(data_dir=data_dir, manual_dir=manual_dir, image_size=image_size)
  common = dict(benchmark='input', dataset=dataset)
  records = []
  start = time.perf_counter()
  sources.prepare(dataset, data_dir=data_dir, manual_dir=manual_dir)
  prepare_s = time.perf_counter() - start
  start = time.perf_counter()
  train_source = sources.load_source(dataset, 'train', cache_images=False,
                                     **args)
  vocab = vocab_lib.Vocab.build(pipeline.all_captions(train_source),
                                min_count=run_config.dataset.min_count)
  index_s = time.perf_counter() - start
  records.append(dict(
      common, stage='prepare', prepare_s=prepare_s,
      index_and_vocab_s=index_s, train_images=len(train_source),
      image_shape=list(train_source.image_shape), vocab_size=len(vocab)))
  options = dict(
      batch_size=run_config.train.batch_size,
      max_len=run_config.dataset.max_len, seed=0,
      captions_per_image=run_config.dataset.train_captions_per_image,
      prefetch=run_config.train.prefetch)
  cached = sources.load_source(dataset, 'train', cache_images=True, **args)
  variants = [('uncached', train_source)]
  if cached.decoded_bytes() <= sources.AUTO_CACHE_BYTES:
    for i in range(len(cached)):
      cached.image(i)
    variants.append(('cached', cached))
  for name, source in variants:
    images_per_s, captions_per_s = pipeline_rates(
        pipeline.train_batches(source, vocab, **options),
        config['input_batches'])
    records.append(dict(
        common, stage=f'pipeline_{name}',
        batch_images=options['batch_size'],
        captions_per_image=options['captions_per_image'],
        images_per_s=images_per_s, captions_per_s=captions_per_s))
  # The run reads images as training does: cached when the split fits.
  run_source = sources.load_source(dataset, 'train', **args)
  records.append(dict(common, **train_run_record(
      run_config, run_source, vocab, config['train_steps'],
      config['repeats'])))
  return records


def run(config: dict) -> list[dict]:
  """Runs the input benchmark for every dataset of `config['datasets']`."""
  data_dir = config.get('data_dir')
  temporary = None
  if data_dir is None:
    data_dir = temporary = tempfile.mkdtemp(prefix='capjax-bench-')
  try:
    records = []
    for dataset in config.get('datasets') or ['shapes']:
      records.extend(dataset_records(dataset, config, data_dir))
    return records
  finally:
    if temporary:
      shutil.rmtree(temporary, ignore_errors=True)
