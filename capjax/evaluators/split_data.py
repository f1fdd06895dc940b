"""What the m-RNN evaluators read of a split: images, captions as ids."""

from typing import Any

import numpy as np

from capjax.data import pipeline
from capjax.data import rare_words
from capjax.data import vocab as vocab_lib


def vocab_of(task, meta: dict[str, Any]) -> vocab_lib.Vocab:
  """The vocabulary of a task's meta (the task's `vocab_of` when it has one).
  """
  if task is not None and hasattr(task, 'vocab_of'):
    return task.vocab_of(meta)
  vocab = meta['vocab']
  if isinstance(vocab, vocab_lib.Vocab):
    return vocab
  return vocab_lib.Vocab.from_json(vocab, origin='task meta')


def open_split(config, split: str):
  """One split of the configured dataset (prepared on first use)."""
  return pipeline.open_split(config.dataset, split)


def images(source, count: int) -> np.ndarray:
  """The first `count` images of a split (0: all): [count, H, W, 3] uint8."""
  count = min(count or len(source), len(source))
  return np.stack([source.image(i) for i in range(count)])


def captions(config, source, vocab: vocab_lib.Vocab, *, count: int,
             per_image: int) -> tuple[np.ndarray, np.ndarray]:
  """Token ids of the first `count` images' captions, encoded as training
  encodes them (`rare_words.as_trained`: with `dataset.rare_words='drop'`
  the rare words are removed, not UNK).

  Args:
    config: the experiment config (reads `dataset.max_len` and
      `dataset.rare_words`).
    source: the split (`open_split`).
    vocab: the training vocabulary.
    count: how many images (0: all).
    per_image: captions kept per image.

  Returns:
    tokens: [count, per_image, max_len + 1] int32 (BOS, words, EOS, PAD);
    mask: [count, per_image] float32, 1 for real captions.
  """
  return pipeline.eval_arrays(
      rare_words.as_trained(config.dataset, vocab, source), vocab,
      max_len=config.dataset.max_len, captions_per_image=per_image,
      count=count or None)


def words_only(tokens: np.ndarray) -> np.ndarray:
  """[..., L] ids with BOS/EOS/PAD -> the words, PAD (0) after them.

  BOS (a leading id 1) is dropped; EOS and everything after it become PAD.
  """
  tokens = np.asarray(tokens)
  if tokens.shape[-1] and np.all(tokens[..., 0] == vocab_lib.BOS_ID):
    tokens = tokens[..., 1:]
  ended = np.cumsum((tokens == vocab_lib.EOS_ID) | (tokens == vocab_lib.PAD_ID),
                    axis=-1) > 0
  return np.where(ended, 0, tokens).astype(np.int32)
