"""The character language-model task: next-character likelihood of text.

Image-free: a batch is `{'tokens': [b, window + 1]}` (and, when the state is
carried across windows, `'reset': [b]`). The model is `char_lm.CharLM`,
sized by `config.model` (embed_dim, hidden_dim, num_layers, cell); the
corpus is `config.dataset.corpus` (a file or folder of `.txt`; '' = Flickr8k
paragraphs of `dataset.manual_dir`). The seed trains it with RMSProp
(`configs/story/`).

With `config.train.carry_state` the loop must keep the state between steps:
`totals_with_state(model, params, batch, state)` returns the new state too,
`initial_state(model, config)` gives the first (see `CARRIES_STATE`);
`totals` is the stateless form every window starts from zeros with.
"""

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from capjax import losses
from capjax.data import text_corpus
from capjax.data import vocab as vocab_lib
from capjax.models import char_lm

DEFAULT_EVALUATORS = ('bits_per_char',)


def carries_state(config: ml_collections.ConfigDict) -> bool:
  """Whether the loop must thread the state through `totals_with_state`."""
  return bool(config.train.carry_state)


def open_corpus(config: ml_collections.ConfigDict):
  """(train ids, held-out ids, chars, description) of the configured corpus."""
  d = config.dataset
  train, heldout, description = text_corpus.open_corpus(
      d.corpus, d.manual_dir, d.heldout_chars)
  chars = text_corpus.build_chars(train)
  return (text_corpus.encode(train, chars), text_corpus.encode(heldout, chars),
          chars, description)


def check_config(config: ml_collections.ConfigDict) -> str | None:
  """What in the config the one train loop cannot run, or None."""
  if carries_state(config) and config.parallel.mode != 'jit':
    return ('config.train.carry_state=True runs with parallel.mode=jit only '
            '(the carried state spans the global batch).')
  corpus = config.dataset.corpus or config.dataset.manual_dir
  if corpus and not os.path.exists(corpus):
    return (f'config.dataset: the corpus {corpus} does not exist: give a '
            '.txt file or folder (dataset.corpus) or the Flickr8k text files '
            '(dataset.manual_dir).')
  return None


def open_data(config: ml_collections.ConfigDict, *,
              process_index: int | None = None,
              process_count: int | None = None):
  """(batches, meta) of the corpus.

  Returns:
    batches: start_step -> iterator of {'tokens': [b, window + 1] int32}
      (shuffled windows), or of consecutive windows with 'reset' [b] when
      `train.carry_state`; global step s depends only on (seed, s).
    meta: {'task', 'vocab' (the characters' Vocab JSON), 'corpus',
      'train_chars', 'heldout_chars'}.
  """
  if process_index is None:
    process_index, process_count = jax.process_index(), jax.process_count()
  train_ids, heldout_ids, chars, description = open_corpus(config)
  window, batch_size = config.dataset.window, config.train.batch_size

  def batches(start_step: int = 0):
    if carries_state(config):
      return text_corpus.stream_batches(
          train_ids, window=window, batch_size=batch_size,
          start_step=start_step, process_index=process_index,
          process_count=process_count)
    return text_corpus.window_batches(
        train_ids, window=window, batch_size=batch_size, seed=config.seed,
        start_step=start_step, process_index=process_index,
        process_count=process_count)

  meta = {'task': 'language_model', 'vocab': chars.to_json(),
          'corpus': description, 'train_chars': int(len(train_ids)),
          'heldout_chars': int(len(heldout_ids))}
  return batches, meta


def vocab_of(meta: dict[str, Any]) -> vocab_lib.Vocab:
  return vocab_lib.Vocab.from_json(meta['vocab'], origin='task meta')


def create_model(config: ml_collections.ConfigDict,
                 meta: dict[str, Any]) -> char_lm.CharLM:
  m = config.model
  return char_lm.CharLM(
      vocab_size=len(vocab_of(meta)), embed_dim=m.embed_dim,
      hidden_dim=m.hidden_dim, num_layers=m.num_layers, cell=m.cell,
      fused=m.fused, dtype=m.get('dtype', 'float32'))


def init_params(model: char_lm.CharLM, rng: jax.Array, batch):
  tokens = jnp.asarray(batch['tokens'])[:, :-1]
  return model.init(rng, tokens)['params']


def initial_state(model: char_lm.CharLM, params, batch_size: int):
  """The zero state of `batch_size` streams (leaves [batch, hidden])."""
  return model.apply({'params': params}, (batch_size,), method='init_carry')


def totals_with_state(model: char_lm.CharLM, params, batch, state, *,
                      train: bool = True, rng: jax.Array | None = None):
  """Sums over the local batch, starting from `state` (zeroed on 'reset').

  Args:
    model: the LM.
    params: its parameters.
    batch: 'tokens' [b, window + 1] int32, optional 'reset' [b] float32,
      optional 'mask' [b].
    state: the carry the previous window ended with (leaves [b, hidden]).
    train: unused (no dropout).
    rng: unused.

  Returns:
    (totals, new state): totals as `totals`; the new state is cut from the
    gradient (truncated backpropagation through time).
  """
  del train, rng
  tokens = jnp.asarray(batch['tokens'])
  if 'reset' in batch:
    keep = 1.0 - jnp.asarray(batch['reset'], jnp.float32)
    state = jax.tree.map(lambda s: s * keep[:, None], state)
  logits, new_state = model.apply({'params': params}, tokens[:, :-1], state)
  targets = tokens[:, 1:]
  mask = batch.get('mask')
  weights = jnp.ones(targets.shape, jnp.float32)
  if mask is not None:
    weights = weights * mask[:, None]
  nll_sum, count = losses.cross_entropy(logits, targets, weights)
  return ({'nll_sum': nll_sum, 'chars': count},
          jax.lax.stop_gradient(new_state))


def totals(model: char_lm.CharLM, params, batch, *, train: bool,
           rng: jax.Array | None = None) -> dict[str, jax.Array]:
  """Sums over the local batch, each window from the zero state.

  Returns:
    {'nll_sum': [] summed negative log-likelihood in nats, 'chars': []
     characters predicted}.
  """
  state = initial_state(model, params, len(batch['tokens']))
  sums, _ = totals_with_state(model, params, batch, state, train=train,
                              rng=rng)
  return sums


def loss(local_totals, global_totals, config=None) -> jax.Array:
  """Local NLL sum over the global character count (nats per character)."""
  del config
  chars = jax.lax.stop_gradient(global_totals['chars'])
  return local_totals['nll_sum'] / jnp.maximum(chars, 1.0)


def summarize(summed, config=None) -> dict[str, jax.Array]:
  """Nats and bits per character (traceable: the loop calls it in jit)."""
  del config
  nats = summed['nll_sum'] / jnp.maximum(summed['chars'], 1.0)
  return {'loss': nats, 'bits_per_char': nats / math.log(2)}


def unigram_bits(config: ml_collections.ConfigDict) -> float:
  """The baseline: held-out bits/char of the training text's unigram model."""
  train_ids, heldout_ids, chars, _ = open_corpus(config)
  return text_corpus.unigram_bits(train_ids, heldout_ids, len(chars))
