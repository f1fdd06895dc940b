"""Retrieval speed: `capjax.benchmark retrieval --model=bilstm|alignment|mrnn`.

`--model=mrnn` (or another captioner) times likelihood retrieval
(`likelihood_retrieval`); the joint-embedding models are timed here.

On precomputed image features (the identity encoder: a [B, cells, 512]
grid, whose mean is the global feature) and random captions, it times the
three parts of retrieval apart, each a jitted function compiled once:

* texts embedded per second (`embed_texts` of a batch of captions);
* images embedded per second (`embed_images` of a batch of features);
* pairs scored per second (`scoring.pairwise_scores`' program over an index
  of K images and L texts: one matmul for the common space, the chunked
  `sum_t max_i v_i . s_t` program for alignment).

Each record carries its matmul GFLOP and the achieved rate, so the entry
point adds its share of this machine's (float32) matmul rate; `--dtype`
lists the precisions to time (`model.dtype`: the embedders' dense layers
and LSTM matmuls; scores stay float32). `--model` picks an entry
of `MODELS` (name -> a function of the flag dict returning records); a new
retrieval model is one more entry.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import config_base
from capjax.benchmarks import dtypes
from capjax.benchmarks import flops
from capjax.benchmarks import likelihood_retrieval
from capjax.benchmarks import timing
from capjax.models import captioners
from capjax.models.retrieval import embedding
from capjax.models.retrieval import scoring

GRID_CELLS = 16  # regions per image: a 4x4 grid (+ the whole image)
FEATURE_DIM = 512
JOINT_DIM = 1024  # the joint space
DEFAULT_BATCH = 256  # texts or images per embedding call
INDEX_IMAGES = {'bilstm': 1000, 'alignment': 64}  # K (alignment: chunks of 16)
INDEX_TEXTS = 5000  # L of the pairs figure


def _config(model: str, flags_: dict) -> ml_collections.ConfigDict:
  c = config_base.base_config()
  c.retrieval.model = 'alignment' if model == 'alignment' else 'common_space'
  c.retrieval.text_encoder = 'bilstm'
  c.retrieval.embed_dim = JOINT_DIM
  c.model.embed_dim = flags_.get('embed', 256)
  c.model.hidden_dim = flags_.get('hidden', 512)
  c.model.encoder.name = 'identity'
  return c


def _timed(name, fn, args, count, unit, config, **extra) -> dict:
  jitted = jax.jit(fn)
  compiled = jitted.lower(*args).compile()
  t, _ = timing.time_fn(lambda: compiled(*args), config['repeats'],
                        config['warmup'], between=config.get('between'))
  gflop = flops.matmul_flops(fn, *args) / 1e9
  return dict(benchmark='retrieval', part=name, count=count,
              **{f'{unit}_per_s': count / t.median_seconds},
              call_ms=1e3 * t.median_seconds, min_call_ms=1e3 * t.min_seconds,
              max_call_ms=1e3 * t.max_seconds, gflop_per_call=gflop,
              achieved_gflop_per_s=gflop / t.median_seconds,
              repeats=t.repeats, **extra)


def embedding_model(model: str, config: dict) -> list[dict]:
  """Times an `embedding.EmbeddingModel`'s three parts in each `--dtype`."""
  return [record for dtype in dtypes.from_config(config)
          for record in _embedding_model(model, config, dtype)]


def _embedding_model(model: str, config: dict, dtype: str) -> list[dict]:
  settings = dtypes.set_dtype(_config(model, config), dtype)
  batch = config.get('batch') or DEFAULT_BATCH
  max_len = config.get('max_len', 20)
  vocab = config.get('vocab', 5000)
  net = embedding.create(settings, vocab)
  rng = np.random.default_rng(0)
  features = jnp.asarray(
      rng.normal(size=(batch, GRID_CELLS, FEATURE_DIM)), jnp.float32)
  tokens = np.zeros((batch, max_len + 1), np.int32)
  tokens[:, 0] = 1
  tokens[:, 1:max_len] = rng.integers(4, vocab, (batch, max_len - 1))
  tokens[:, max_len] = 2
  tokens = jnp.asarray(tokens)
  params = jax.jit(net.init)(jax.random.key(0), features, tokens)
  size = dict(model=model, dtype=dtype, batch=batch, max_len=max_len,
              vocab=vocab,
              hidden=settings.model.hidden_dim,
              word_dim=settings.model.embed_dim,
              joint_dim=settings.retrieval.embed_dim, regions=GRID_CELLS + 1)
  records = [
      _timed('texts', net.embed_texts, (params, tokens), batch, 'texts',
             config, **size),
      _timed('images', net.embed_images, (params, features), batch,
             'images', config, **size),
  ]
  images = jax.jit(net.embed_images)(params, features)
  texts = jax.jit(net.embed_texts)(params, tokens)
  num_images, num_texts = INDEX_IMAGES[model], INDEX_TEXTS
  images = jnp.resize(images, (num_images,) + images.shape[1:])
  texts = jnp.resize(texts, (num_texts,) + texts.shape[1:])
  if model == 'alignment':
    chunk = settings.retrieval.score_chunk
    pairs = lambda i, t: scoring.chunked_scores(net.similarity, i, t, chunk)
  else:
    pairs = net.similarity
  records.append(_timed('pairs', pairs, (images, texts),
                        num_images * num_texts, 'pairs', config,
                        index=f'{num_images}x{num_texts}', **size))
  return records


# --model -> a function of the flag dict returning records.
# Any other captioner (`show_tell/gru`...) is timed by likelihood retrieval
# through the adapter.
MODELS: dict[str, Callable[[dict], list[dict]]] = {
    'bilstm': functools.partial(embedding_model, 'bilstm'),
    'alignment': functools.partial(embedding_model, 'alignment'),
    'mrnn': likelihood_retrieval.run,
}


def check_model(model: str | None) -> str:
  """The --model to time; ValueError naming the choices for another."""
  model = model or 'bilstm'
  if model not in MODELS and model.split('/')[0] not in captioners.REGISTRY:
    raise ValueError(f'--model: unknown {model!r}; choose from '
                     f'{sorted(MODELS)} or a captioner of '
                     f'{sorted(captioners.REGISTRY)} (likelihood retrieval).')
  return model


def run(config: dict) -> list[dict]:
  """Times the retrieval model named by --model."""
  model = check_model(config.get('model'))
  return MODELS.get(model, likelihood_retrieval.run)(config)
