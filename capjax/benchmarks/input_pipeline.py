"""Benchmark of dataset preparation and the grain input pipelines (JSON out).

  python -m capjax.benchmarks.input_pipeline --dataset=shapes --prepare
  python -m capjax.benchmarks.input_pipeline --dataset=flickr8k \\
      --manual_dir=../shared/data/flickr8k_1k --image_size=224

Prints one JSON object: preparation seconds (with --prepare, into a fresh
temporary data_dir) and training-pipeline images/s with the image cache off
(every image read and decoded) and, for splits that fit in memory, warm (every
image decoded once already). Figures are host-side only: no model runs.
"""

from collections.abc import Iterator
import json
import shutil
import tempfile
import time

from absl import app
from absl import flags

from capjax.data import pipeline
from capjax.data import sources
from capjax.data import vocab as vocab_lib

_DATASET = flags.DEFINE_string('dataset', 'shapes', 'Registered dataset name '
                               '(optionally name/config).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: a '
                                'fresh temporary one).')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, "Folder of the user's "
                                  'files (real datasets).')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', None, 'Resize images to '
                                   'this side (default: the dataset\'s).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 64, 'Global batch size.')
_BATCHES = flags.DEFINE_integer('batches', 50, 'Batches timed per figure.')
_THREADS = flags.DEFINE_integer('num_threads', 1, 'Prefetch threads.')
_WORKERS = flags.DEFINE_integer('num_workers', 0, 'Worker processes.')
_PREPARE = flags.DEFINE_bool('prepare', False, 'Also time preparing the '
                             'dataset (into a fresh data_dir).')


def _images_per_second(batches: Iterator[dict], count: int) -> float:
  first = next(batches)  # Start-up (threads, workers) is not timed.
  start = time.perf_counter()
  for _ in range(count):
    next(batches)
  return count * len(first['image']) / (time.perf_counter() - start)


def run(*, dataset: str, data_dir: str | None, manual_dir: str | None,
        image_size: int | None, batch_size: int, batches: int,
        num_threads: int, num_workers: int, prepare: bool) -> dict:
  """Measures the pipeline; returns the figures (see the module docstring)."""
  figures = {'dataset': dataset, 'batch_size': batch_size,
             'num_threads': num_threads, 'num_workers': num_workers}
  temporary = None
  if data_dir is None:
    data_dir = temporary = tempfile.mkdtemp(prefix='capjax-bench-')
  try:
    if prepare:
      start = time.perf_counter()
      sources.prepare(dataset, data_dir=data_dir, manual_dir=manual_dir)
      figures['prepare_seconds'] = round(time.perf_counter() - start, 2)
    args = dict(data_dir=data_dir, manual_dir=manual_dir,
                image_size=image_size)
    train = sources.load_source(dataset, 'train', cache_images=False, **args)
    start = time.perf_counter()
    vocab = vocab_lib.Vocab.build(pipeline.all_captions(train), min_count=1)
    figures['index_and_vocab_seconds'] = round(time.perf_counter() - start, 2)
    figures['image_shape'] = list(train.image_shape)
    figures['train_images'] = len(train)
    options = dict(batch_size=batch_size, max_len=20, seed=0,
                   num_threads=num_threads, num_workers=num_workers)
    figures['train_images_per_s_uncached'] = round(_images_per_second(
        pipeline.train_batches(train, vocab, **options), batches), 1)
    cached = sources.load_source(dataset, 'train', cache_images=True, **args)
    if cached.decoded_bytes() <= sources.AUTO_CACHE_BYTES:
      for i in range(len(cached)):
        cached.image(i)
      figures['train_images_per_s_cached'] = round(_images_per_second(
          pipeline.train_batches(cached, vocab, **options), batches), 1)
  finally:
    if temporary:
      shutil.rmtree(temporary, ignore_errors=True)
  return figures


def main(argv):
  del argv
  print(json.dumps(run(
      dataset=_DATASET.value, data_dir=_DATA_DIR.value,
      manual_dir=_MANUAL_DIR.value, image_size=_IMAGE_SIZE.value,
      batch_size=_BATCH_SIZE.value, batches=_BATCHES.value,
      num_threads=_THREADS.value, num_workers=_WORKERS.value,
      prepare=_PREPARE.value or _DATA_DIR.value is None)))


if __name__ == '__main__':
  app.run(main)
