"""Language modelling: next-token likelihood of a text, no image.

The texts are the captions of `config.dataset` (each caption one sequence,
BOS first, EOS last), so the same datasets serve the captioners and their
image-free baseline (the m-RNN paper's RNN-Base): the gap between the two
perplexities is what the image is worth. Its meta is the training split's
vocabulary, exactly as for captioning.

Config fields it reads: `dataset.*` (split files, `max_len`, `min_count`),
`model.embed_dim`, `model.hidden_dim`, `model.cell`, `model.num_layers`,
`model.dropout`, `model.fused`, `model.unroll`, `train.batch_size`,
`train.prefetch`, `eval.batch_size` and `seed`.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import losses
from capjax.data import pipeline
from capjax.data import vocab as vocab_lib
from capjax.models import language_model
from capjax.tasks import captioning

DEFAULT_EVALUATORS = ('perplexity',)


def _encoded(config: ml_collections.ConfigDict, split: str,
             vocab: vocab_lib.Vocab) -> np.ndarray:
  """[captions, max_len + 1] int32: every caption of a split, BOS first."""
  source = pipeline.open_split(config.dataset, split)
  return vocab.encode_batch(pipeline.all_captions(source),
                            config.dataset.max_len)


def open_data(config: ml_collections.ConfigDict):
  """Shuffled batches of training captions and the vocabulary meta."""
  source = pipeline.open_split(config.dataset, 'train')
  vocab = vocab_lib.Vocab.build(
      pipeline.all_captions(source), min_count=config.dataset.min_count)
  tokens = _encoded(config, 'train', vocab)

  def batches(start_step: int):
    return pipeline.token_batches(
        tokens, batch_size=config.train.batch_size, seed=config.seed,
        start_step=start_step, process_index=jax.process_index(),
        process_count=jax.process_count(), prefetch=config.train.prefetch)

  return batches, captioning.meta_of(vocab)


def eval_batches(config: ml_collections.ConfigDict, meta: dict, split: str):
  """Every caption of `split` once, in order, the last batch masked."""
  tokens = _encoded(config, split, captioning.vocab_of(meta))
  return pipeline.token_eval_batches(
      tokens, batch_size=config.eval.batch_size,
      process_index=jax.process_index(), process_count=jax.process_count())


def create_model(config: ml_collections.ConfigDict,
                 meta: dict) -> language_model.RecurrentLM:
  m = config.model
  return language_model.RecurrentLM(
      vocab_size=len(captioning.vocab_of(meta)),
      embed_dim=m.embed_dim, hidden_dim=m.hidden_dim,
      num_layers=m.num_layers, cell=m.cell, dropout=m.dropout,
      fused=m.fused, unroll=m.unroll)


def init_params(model: language_model.RecurrentLM, rng: jax.Array,
                batch: dict):
  return model.init(rng, batch['tokens'][:1, :-1])['params']


def totals(model: language_model.RecurrentLM, params, batch: dict, *,
           train: bool, rng: jax.Array | None = None) -> dict[str, jax.Array]:
  """'nll_sum' and 'tokens' over the real tokens of a batch ([] float32).

  Args:
    model: the language model.
    params: its parameters.
    batch: 'tokens' [batch, len + 1] int32, optional 'mask' [batch].
    train: dropout on.
    rng: the dropout key (train only).
  """
  tokens = batch['tokens']
  inputs, target_ids = tokens[:, :-1], tokens[:, 1:]
  weights = (target_ids != vocab_lib.PAD_ID).astype(jnp.float32)
  if 'mask' in batch:
    weights = weights * batch['mask'][:, None]
  rngs = {'dropout': rng} if train and rng is not None else {}
  logits = model.apply({'params': params}, inputs, train=train, rngs=rngs)
  nll_sum, count = losses.cross_entropy(logits, target_ids, weights)
  return {'nll_sum': nll_sum, 'tokens': count}


def loss(local: dict, global_totals: dict,
         config: ml_collections.ConfigDict) -> jax.Array:
  del config
  return local['nll_sum'] / jnp.maximum(global_totals['tokens'], 1.0)


def summarize(global_totals: dict,
              config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  del config
  nll = global_totals['nll_sum'] / jnp.maximum(global_totals['tokens'], 1.0)
  return {'loss': nll, 'nll': nll}
