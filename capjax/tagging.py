"""Hashtags from a trained model: decode tag sets, score them on a split.

Two kinds of tag model (`configs/hashtags/`):
  * a captioner over tag sequences (soft attention, Show-and-Tell): greedy
    decoding where no tag comes twice (`Constraints.no_repeat_any`), UNK,
    PAD and BOS never come, and EOS ends the set; its tags in order are both
    what it emits and its ranking; soft attention also gives a map per tag;
  * the multi-label classifier: it emits the tags above
    `eval.tag_threshold` (at least its best one) and ranks all by
    probability.
`Tagger` compiles the tagging function once per batch shape; `score_split`
gives the seed's table (BLEU-1, P/R/F1@k) on a split.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import checkpointing
from capjax import decoding
from capjax.data import pipeline
from capjax.data import vocab as vocab_lib
from capjax.metrics import tags as tag_metrics
from capjax.models import captioning
from capjax.models import multilabel

SEQUENCE_TASK = 'captioning'
MULTILABEL_TASK = 'multilabel'


@dataclasses.dataclass
class TagSet:
  """The tags of one image.

  Attributes:
    tags: what the model emits, in order (no '#').
    ranked: tags best first (for P/R/F1@k).
    attention: [len(tags), cells] attention per emitted tag, or None.
  """

  tags: list[str]
  ranked: list[str]
  attention: np.ndarray | None = None


def vocab_from_json(data: dict[str, Any]) -> vocab_lib.Vocab:
  """A checkpoint's tag vocabulary from its task meta (or the Vocab JSON).

  The captioning meta holds it under 'vocabulary', the multilabel meta
  under 'vocab'.
  """
  for key in ('vocabulary', 'vocab'):
    if key in data and 'format' not in data:
      data = data[key]
      break
  return vocab_lib.Vocab.from_json(data, origin='the checkpoint vocabulary')


class Tagger:
  """Tags images with a captioner or a multi-label classifier."""

  def __init__(self, config: ml_collections.ConfigDict,
               vocab: vocab_lib.Vocab, model):
    self.config = config
    self.vocab = vocab
    self.model = model
    self.kind = config.get('task', SEQUENCE_TASK)
    if self.kind not in (SEQUENCE_TASK, MULTILABEL_TASK):
      raise ValueError(f'config.task {self.kind!r} does not tag images.')
    self.max_len = config.dataset.max_len
    self.k = max(config.eval.tag_k, 1)
    self._tag = jax.jit(self._tag_impl)

  def _tag_impl(self, params, images):
    if self.kind == MULTILABEL_TASK:
      probs = jax.nn.sigmoid(self.model.logits(params, images))
      values, ids = jax.lax.top_k(probs, min(self.max_len, probs.shape[-1]))
      return ids, values, jnp.zeros(ids.shape[:1] + (0, 0))
    step_fn, init_carry = self.model.decoder_fns(params, images)
    constraints = decoding.Constraints(
        no_repeat_any=True, suppress_unk=True, unk_id=vocab_lib.UNK_ID,
        banned_ids=(vocab_lib.PAD_ID, vocab_lib.BOS_ID))
    seqs, _ = decoding.greedy(step_fn, init_carry, max_len=self.max_len,
                              constraints=constraints)
    seqs = seqs[:, 0]
    bos = jnp.full(seqs.shape[:1] + (1,), vocab_lib.BOS_ID, jnp.int32)
    inputs = jnp.concatenate([bos, seqs[:, :-1]], axis=1)
    _, intermediates = self.model.logits(params, images, inputs, train=False)
    attention = intermediates.get('attention')
    if attention is None:
      attention = jnp.zeros(seqs.shape[:1] + (0, 0))
    return seqs, jnp.zeros(seqs.shape, jnp.float32), attention

  def tag(self, params, images: np.ndarray) -> list[TagSet]:
    """images [batch, H, W, 3] uint8 -> one TagSet per image."""
    ids, probs, attention = jax.device_get(
        self._tag(params, jnp.asarray(images)))
    words = self.vocab.words
    results = []
    for row in range(len(ids)):
      if self.kind == MULTILABEL_TASK:
        ranked = [words[i] for i in ids[row]]
        keep = max(int(np.sum(probs[row] > self.config.eval.tag_threshold)),
                   1)
        results.append(TagSet(tags=ranked[:keep], ranked=ranked))
        continue
      tags = self.vocab.decode(ids[row]).split()
      maps = attention[row, :len(tags)] if attention.shape[-1] else None
      results.append(TagSet(tags=tags, ranked=tags, attention=maps))
    return results


def create_model(config: ml_collections.ConfigDict, vocab: vocab_lib.Vocab):
  """The tag model that `config` describes."""
  if config.get('task', SEQUENCE_TASK) == MULTILABEL_TASK:
    return multilabel.create(config, len(vocab))
  return captioning.create(config, len(vocab))


def from_workdir(workdir: str, which: str = 'latest',
                 flag: str = '--checkpoint'):
  """(Tagger, params) of a trained tag model's checkpoint.

  `which` is 'latest' or 'best'; `flag` is the command's flag choosing it
  (see `checkpointing.restore_trained`).

  Raises:
    FileNotFoundError: no checkpoint (named).
    ValueError: every step is damaged, or the workdir holds a model that
      does not tag images (a retrieval or story model).
  """
  config, vocab_json, params, _ = checkpointing.restore_trained(
      workdir, which, flag)
  kind = config.get('task', SEQUENCE_TASK)
  if kind not in (SEQUENCE_TASK, MULTILABEL_TASK):
    raise ValueError(
        f'{workdir} holds a {kind!r} model (config.task), not a tag model: '
        f'give a run of configs/hashtags/ (config.task {SEQUENCE_TASK} or '
        f'{MULTILABEL_TASK}).')
  vocab = vocab_from_json(vocab_json)
  return Tagger(config, vocab, create_model(config, vocab)), params


def tag_source(tagger: Tagger, params, source, batch_size: int,
               limit: int = 0, progress=None) -> list[TagSet]:
  """TagSets of every image of a split, in index order (fixed batch shape).

  `progress` (a `capjax.progress.Progress`, optional) is told the images
  of each finished batch.
  """
  count = min(len(source), limit) if limit else len(source)
  results = []
  for start in range(0, count, batch_size):
    stop = min(start + batch_size, count)
    images = np.stack([source.image(i) for i in range(start, stop)])
    padded = np.zeros((batch_size,) + images.shape[1:], images.dtype)
    padded[:len(images)] = images
    results.extend(tagger.tag(params, padded)[:len(images)])
    if progress is not None:
      progress.update(len(images))
  return results


def score_split(tagger: Tagger, params, source, *, batch_size: int = 64,
                limit: int = 0,
                progress=None) -> tuple[dict[str, float], list[TagSet]]:
  """The seed's table on a split: BLEU-1 and mean P/R/F1@k.

  Args:
    tagger: the model.
    params: its parameters.
    source: a split of a hashtag dataset (one tag caption per image).
    batch_size: images per compiled call.
    limit: score only the first this many images (0: all).
    progress: told the images of each tagged batch (`tag_source`).

  Returns:
    (scores, the TagSets in index order).
  """
  results = tag_source(tagger, params, source, batch_size, limit, progress)
  truth = [source.captions[i][0].split() for i in range(len(results))]
  scores = tag_metrics.tag_scores(
      [r.tags for r in results], truth, k=tagger.k,
      ranked=[r.ranked for r in results])
  return scores, results


def open_split(config: ml_collections.ConfigDict, split: str):
  """One split of the configured hashtag dataset."""
  return pipeline.open_split(config.dataset, split)
