"""grain input pipelines: fixed-shape numpy batches from a CaptionSource.

Training (`train_batches`) samples (image, caption) pairs: every caption of
every image is one example, the pairs are reshuffled every epoch, and the
stream is infinite. Element j of the stream is a pure function of
(seed, j), and global step s takes elements [s * B, (s + 1) * B): a run
resumed at step s (`start_step=s`) sees exactly the batches of an
uninterrupted one, whatever happened before. With several processes, each
yields its contiguous slice of the global batch (`batch_size //
process_count` examples, process 0 first), so the slices of one step
partition the global batch.

Evaluation (`eval_batches`) makes one pass over the images of a split in
index order, with all their captions, in batches of fixed shape: the last
batch is padded (`mask` 0, `image_id` -1), never dropped.

Decoding happens in grain `map`s; captions are tokenised once, when a
pipeline is built. A background thread prefetches `prefetch` batches so a
training step need not wait; `num_workers` > 0 decodes in that many
processes instead (use for large photos on machines with spare cores).

Typical use::

  train = sources.load_source('shapes', 'train')
  vocab = vocab_lib.Vocab.build(pipeline.all_captions(train), min_count=1)
  batches = pipeline.train_batches(train, vocab, batch_size=64, max_len=20,
                                   seed=0)
  batch = next(batches)  # {'image': [64, 64, 64, 3] uint8, ...}
"""

from collections.abc import Iterator
import math

from absl import flags
import grain
import ml_collections
import numpy as np

from capjax.data import caption_cleaning
from capjax.data import feature_source
from capjax.data import sources
from capjax.data import vocab as vocab_lib

# Re-exported: the pipeline's callers open sources through here.
load_source = sources.load_source
PADDING_IMAGE_ID = -1


def _local_batch_size(batch_size: int, process_count: int) -> int:
  if batch_size < 1 or batch_size % process_count:
    raise ValueError(f'batch_size {batch_size} must be a positive multiple of'
                     f' process_count {process_count}.')
  return batch_size // process_count


def _check_process(process_index: int, process_count: int) -> None:
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} is outside '
                     f'[0, {process_count}).')


def _shuffle_seed(seed: int) -> int:
  """A 32-bit shuffle seed; unrelated for nearby `seed`s.

  grain reshuffles epoch e with (shuffle seed + e); scrambling the seed keeps
  runs with seeds s and s + 1 from sharing epochs.
  """
  return int(np.random.SeedSequence([seed, 0x5EED]).generate_state(1)[0])


class _TrainExample:
  """Pair index -> {'image', 'tokens', 'image_id'} (a picklable grain map)."""

  def __init__(self, source, pair_record, pair_tokens, image_ids):
    self.source = source
    self.pair_record = pair_record  # [num_pairs] int64
    self.pair_tokens = pair_tokens  # [num_pairs, max_len + 1] int32
    self.image_ids = image_ids  # [num_examples] int64

  def __call__(self, pair: int) -> dict[str, np.ndarray]:
    record = int(self.pair_record[pair])
    return {'image': self.source.image(record),
            'tokens': self.pair_tokens[pair],
            'image_id': self.image_ids[record]}


class _TrainImageExample:
  """Image index -> {'image', 'tokens' [R, ...], 'caption_mask', 'image_id'}."""

  def __init__(self, source, tokens, caption_mask, image_ids):
    self.source = source
    self.tokens = tokens  # [num_examples, R, max_len + 1] int32
    self.caption_mask = caption_mask  # [num_examples, R] float32
    self.image_ids = image_ids  # [num_examples] int64

  def __call__(self, index: int) -> dict[str, np.ndarray]:
    return {'image': self.source.image(index),
            'tokens': self.tokens[index],
            'caption_mask': self.caption_mask[index],
            'image_id': self.image_ids[index]}


class _EvalExample:
  """Position -> an eval example, or padding past the end of the split."""

  def __init__(self, source, tokens, caption_mask, image_ids):
    self.source = source
    self.tokens = tokens  # [num_examples, R, max_len + 1] int32
    self.caption_mask = caption_mask  # [num_examples, R] float32
    self.image_ids = image_ids  # [num_examples] int64

  def __call__(self, position: int) -> dict[str, np.ndarray]:
    if position < len(self.image_ids):
      return {'image': self.source.image(position),
              'tokens': self.tokens[position],
              'caption_mask': self.caption_mask[position],
              'mask': np.float32(1),
              'image_id': self.image_ids[position]}
    return {'image': self.source.blank_image(),
            'tokens': np.zeros_like(self.tokens[0]),
            'caption_mask': np.zeros_like(self.caption_mask[0]),
            'mask': np.float32(0),
            'image_id': np.int64(PADDING_IMAGE_ID)}


def _iterate(
    dataset: grain.MapDataset, prefetch: int, num_threads: int,
    num_workers: int) -> Iterator[dict[str, np.ndarray]]:
  if prefetch < 0 or num_threads < 0 or num_workers < 0:
    raise ValueError('prefetch, num_threads and num_workers must be >= 0.')
  threads = num_threads if prefetch else 0
  read_options = grain.ReadOptions(
      num_threads=threads, prefetch_buffer_size=prefetch if threads else 0)
  iterable = dataset.to_iter_dataset(read_options)
  if num_workers:
    if not flags.FLAGS.is_parsed():
      # grain's workers read grain's absl flags; outside an absl app nobody
      # parsed them, so let them take their defaults.
      flags.FLAGS.mark_as_parsed()
    iterable = iterable.mp_prefetch(
        grain.MultiprocessingOptions(num_workers=num_workers))
  return iter(iterable)


def train_pairs(
    source: sources.CaptionSource, vocab: vocab_lib.Vocab,
    max_len: int) -> tuple[np.ndarray, np.ndarray]:
  """Every (image, caption) training pair, tokenised.

  Args:
    source: the training split.
    vocab: the vocabulary.
    max_len: decoder length.

  Returns:
    pair_record: [num_pairs] int64, the example index of each pair;
    pair_tokens: [num_pairs, max_len + 1] int32, its encoded caption.
  """
  captions = source.captions
  counts = np.array([len(c) for c in captions], np.int64)
  if not counts.sum():
    raise ValueError(f'{source.name} {source.split} has no captions.')
  pair_record = np.repeat(np.arange(len(captions), dtype=np.int64), counts)
  flat = [c for image_captions in captions for c in image_captions]
  return pair_record, vocab.encode_batch(flat, max_len)


def train_batches(
    source: sources.CaptionSource, vocab: vocab_lib.Vocab, *,
    batch_size: int, max_len: int, seed: int, start_step: int = 0,
    captions_per_image: int = 1,
    process_index: int = 0, process_count: int = 1, prefetch: int = 2,
    num_threads: int = 1, num_workers: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
  """Infinite shuffled training batches; step s is a pure function of (seed, s).

  With `captions_per_image` R > 1 an example is an image with R of its
  captions (the first R; an image with fewer has all-PAD rows, masked out),
  and the images are what is shuffled: the encoder then runs once for R
  captions, which is how a CNN trained from scratch gets the most
  supervision per image it encodes.

  Args:
    source: the training split.
    vocab: the vocabulary that encodes captions.
    batch_size: the GLOBAL batch size (a multiple of process_count).
    max_len: decoder length (tokens have max_len + 1 ids).
    seed: the data seed.
    start_step: the first step to yield (to resume a run).
    captions_per_image: R; 1 yields (image, caption) pairs.
    process_index: this process (e.g. jax.process_index()).
    process_count: number of processes (e.g. jax.process_count()).
    prefetch: batches computed ahead in a background thread (0: none).
    num_threads: threads computing batches ahead.
    num_workers: worker processes decoding (0: none, the default).

  Yields:
    {'image': [b, H, W, 3] uint8, 'tokens': [b, max_len + 1] int32,
     'image_id': [b] int64} with b = batch_size // process_count: this
    process's slice of global step start_step, start_step + 1, ...
    With R > 1, 'tokens' is [b, R, max_len + 1] and 'caption_mask' [b, R]
    float32 marks real captions.
  """
  local = _local_batch_size(batch_size, process_count)
  _check_process(process_index, process_count)
  if start_step < 0:
    raise ValueError(f'start_step must be >= 0, got {start_step}.')
  if captions_per_image < 1:
    raise ValueError(
        f'captions_per_image must be >= 1, got {captions_per_image}.')
  if captions_per_image == 1:
    pair_record, pair_tokens = train_pairs(source, vocab, max_len)
    examples = grain.MapDataset.range(len(pair_record))
    to_example = _TrainExample(
        source, pair_record, pair_tokens, source.image_ids)
  else:
    tokens, caption_mask = eval_arrays(
        source, vocab, max_len=max_len, captions_per_image=captions_per_image)
    examples = grain.MapDataset.range(len(source))
    to_example = _TrainImageExample(
        source, tokens, caption_mask, source.image_ids)
  dataset = (
      examples
      .seed(_shuffle_seed(seed))
      .shuffle()
      .repeat()
      .map(to_example)
      .batch(local, drop_remainder=True))
  # Local batch q holds stream elements [q * local, (q + 1) * local); global
  # step s is local batches s * process_count ... + process_count - 1.
  dataset = dataset[process_index::process_count][start_step:]
  return _iterate(dataset, prefetch, num_threads, num_workers)


def eval_arrays(
    source: sources.CaptionSource, vocab: vocab_lib.Vocab, *, max_len: int,
    captions_per_image: int, count: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """The captions of a split's first `count` images (None: all), encoded
  per image; the other images' captions are not encoded.

  Returns:
    tokens: [count, captions_per_image, max_len + 1] int32 (an image
      with fewer captions has all-PAD rows; extra captions are left out);
    caption_mask: [count, captions_per_image] float32, 1 for real captions.
  """
  count = len(source) if count is None else min(count, len(source))
  tokens = np.zeros([count, captions_per_image, max_len + 1], np.int32)
  caption_mask = np.zeros([count, captions_per_image], np.float32)
  for i, captions in zip(range(count), source.captions):
    captions = captions[:captions_per_image]
    tokens[i, :len(captions)] = vocab.encode_batch(captions, max_len)
    caption_mask[i, :len(captions)] = 1
  return tokens, caption_mask


def num_eval_batches(source: sources.CaptionSource, batch_size: int) -> int:
  """How many batches `eval_batches` yields (the last one padded)."""
  return math.ceil(len(source) / batch_size)


def eval_batches(
    source: sources.CaptionSource, vocab: vocab_lib.Vocab, *,
    batch_size: int, max_len: int, captions_per_image: int = 5,
    process_index: int = 0, process_count: int = 1, prefetch: int = 2,
    num_threads: int = 1, num_workers: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
  """One pass over every image of a split, in index order, fixed shapes.

  Global batch g holds images [g * batch_size, (g + 1) * batch_size); each
  process yields its contiguous slice. Positions past the last image are
  padding. Every process yields `num_eval_batches(source, batch_size)`
  batches.

  Args:
    source: the split.
    vocab: the vocabulary that encodes captions.
    batch_size: the GLOBAL batch size (a multiple of process_count).
    max_len: decoder length (tokens have max_len + 1 ids).
    captions_per_image: R, the reference captions kept per image.
    process_index: this process.
    process_count: number of processes.
    prefetch: batches computed ahead in a background thread (0: none).
    num_threads: threads computing batches ahead.
    num_workers: worker processes decoding (0: none, the default).

  Yields:
    {'image': [b, H, W, 3] uint8, 'tokens': [b, R, max_len + 1] int32,
     'caption_mask': [b, R] float32, 'mask': [b] float32 (1 real, 0 pad),
     'image_id': [b] int64 (-1 for padding)}, b = batch_size //
    process_count.
  """
  local = _local_batch_size(batch_size, process_count)
  _check_process(process_index, process_count)
  tokens, caption_mask = eval_arrays(
      source, vocab, max_len=max_len, captions_per_image=captions_per_image)
  positions = num_eval_batches(source, batch_size) * batch_size
  dataset = (
      grain.MapDataset.range(positions)
      .map(_EvalExample(source, tokens, caption_mask, source.image_ids))
      .batch(local, drop_remainder=True))
  dataset = dataset[process_index::process_count]
  return _iterate(dataset, prefetch, num_threads, num_workers)


class _TokenRow:
  """Index -> {'tokens': row} of an in-memory token array (a grain map)."""

  def __init__(self, tokens, mask=None):
    self.tokens = tokens  # [num_rows, len] int32
    self.mask = mask  # None, or True: emit 'mask' (1 real, 0 padding)

  def __call__(self, index: int) -> dict[str, np.ndarray]:
    if not self.mask:
      return {'tokens': self.tokens[index]}
    if index < len(self.tokens):
      return {'tokens': self.tokens[index], 'mask': np.float32(1)}
    return {'tokens': np.zeros_like(self.tokens[0]), 'mask': np.float32(0)}


def token_batches(
    tokens: np.ndarray, *, batch_size: int, seed: int, start_step: int = 0,
    process_index: int = 0, process_count: int = 1, prefetch: int = 2,
) -> Iterator[dict[str, np.ndarray]]:
  """Infinite shuffled batches of token rows; step s a function of (seed, s).

  Args:
    tokens: [num_rows, len] int32, e.g. encoded captions or text windows.
    batch_size: the GLOBAL batch size (a multiple of process_count).
    seed: the data seed.
    start_step: the first step to yield (to resume a run).
    process_index: this process.
    process_count: number of processes.
    prefetch: batches computed ahead in a background thread (0: none).

  Yields:
    {'tokens': [b, len] int32}, b = batch_size // process_count: this
    process's slice of global step start_step, start_step + 1, ...
  """
  local = _local_batch_size(batch_size, process_count)
  _check_process(process_index, process_count)
  if start_step < 0:
    raise ValueError(f'start_step must be >= 0, got {start_step}.')
  if not len(tokens):
    raise ValueError('token_batches: no rows to train on.')
  dataset = (
      grain.MapDataset.range(len(tokens))
      .seed(_shuffle_seed(seed))
      .shuffle()
      .repeat()
      .map(_TokenRow(tokens))
      .batch(local, drop_remainder=True))
  dataset = dataset[process_index::process_count][start_step:]
  return _iterate(dataset, prefetch, 1, 0)


def token_eval_batches(
    tokens: np.ndarray, *, batch_size: int, process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """One pass over token rows in order; the last batch padded and masked.

  Yields:
    {'tokens': [b, len] int32, 'mask': [b] float32 (1 real, 0 padding)}.
  """
  local = _local_batch_size(batch_size, process_count)
  _check_process(process_index, process_count)
  positions = math.ceil(len(tokens) / batch_size) * batch_size
  dataset = (
      grain.MapDataset.range(positions)
      .map(_TokenRow(tokens, mask=True))
      .batch(local, drop_remainder=True))
  dataset = dataset[process_index::process_count]
  return _iterate(dataset, 2, 1, 0)


def other_dataset(split: str) -> tuple[str, str] | None:
  """'simplicity:test' -> ('simplicity', 'test'); a plain split -> None."""
  name, sep, split_name = split.rpartition(':')
  return (name, split_name) if sep else None


class CleanedSource:
  """A split whose captions went through a cleaner; everything else as is.

  Attributes:
    source: the split it wraps (images, ids and names come from it).
    captions: the cleaned captions of each example, in index order.
    reference_captions: what evaluation scores against: the cleaned
      captions, or the source's raw ones.
  """

  def __init__(self, source, clean, *, clean_references: bool):
    """Cleans every caption of `source` once.

    Args:
      source: a `sources.CaptionSource` (or another `CleanedSource`).
      clean: caption -> cleaned caption.
      clean_references: score evaluation against cleaned captions (else
        against the source's references).
    """
    self.source = source
    self.captions = [[clean(c) for c in captions]
                     for captions in source.captions]
    self.reference_captions = (
        self.captions if clean_references
        else getattr(source, 'reference_captions', source.captions))

  def __len__(self) -> int:
    return len(self.source)

  def __repr__(self) -> str:
    return f'CleanedSource({self.source!r})'

  def __getattr__(self, name):
    if name == 'source':  # not set yet (e.g. while unpickling)
      raise AttributeError(name)
    return getattr(self.source, name)


def open_split(dataset: ml_collections.ConfigDict,
               split: str) -> sources.CaptionSource:
  """Opens one split of `config.dataset` (preparing it on first use).

  A split 'NAME:SPLIT' is SPLIT of another registered dataset, with the
  builder config `dataset.eval_builder_config` and the files of
  `dataset.eval_manual_dir` (same data_dir and image size): e.g. a model
  trained on Flickr8k evaluated on 'simplicity:test' (seed 004's protocol).
  With `dataset.features` (a folder from `python -m capjax.extract_features
  --config`) the split's `image(i)` are that image's features ([D], or
  [L, D] with `dataset.feature_grid`) instead of its pixels. Its captions
  are cleaned as `dataset` asks (`cleaned`).
  """
  name, builder_config = dataset.name, dataset.builder_config
  manual_dir = dataset.manual_dir
  other = other_dataset(split)
  if other:
    if dataset.get('features'):
      raise feature_source.FeaturesError(
          f'{split}: the features in {dataset.features} are of '
          f'{dataset.name}; score another dataset from its pixels.')
    name, split = other
    builder_config = dataset.get('eval_builder_config', '')
    manual_dir = dataset.get('eval_manual_dir', '')
  source = load_source(
      name,
      split,
      data_dir=dataset.data_dir or None,
      manual_dir=manual_dir or None,
      builder_config=builder_config or None,
      image_size=dataset.image_size,
  )
  if dataset.get('features'):
    key = 'grid' if dataset.get('feature_grid') else 'global'
    source = feature_source.FeatureSource(source, dataset.features, key)
  return cleaned(dataset, source)


def cleaned(dataset: ml_collections.ConfigDict, source):
  """The split with the caption cleaning of `dataset`, or `source` itself.

  With `dataset.stop_words` or `dataset.letter_words` the captions are
  cleaned (`caption_cleaning`) for the vocabulary, the targets and, with
  `dataset.clean_references`, the evaluation references.
  """
  clean = caption_cleaning.cleaner(
      stop_words=dataset.get('stop_words', False),
      letter_words=dataset.get('letter_words', False))
  if clean is None:
    return source
  return CleanedSource(source, clean, clean_references=dataset.get(
      'clean_references', False))


def all_captions(source: sources.CaptionSource) -> list[str]:
  """Every caption of the split (e.g. train, to build the vocabulary)."""
  return [c for captions in source.captions for c in captions]


def references(source: sources.CaptionSource) -> dict[int, list[str]]:
  """image_id -> the image's reference captions (raw unless cleaned)."""
  captions = getattr(source, 'reference_captions', source.captions)
  return {int(i): list(c) for i, c in zip(source.image_ids, captions)}


def scenes(source: sources.CaptionSource) -> dict[int, str]:
  """image_id -> ground-truth scene JSON (shapes only).

  Raises:
    ValueError: the dataset has no scenes.
  """
  scene_list = source.scenes
  if scene_list is None:
    raise ValueError(f'{source.name} has no scenes (only shapes does).')
  return {int(i): s for i, s in zip(source.image_ids, scene_list)}

