"""Batched story generation: `python -m capjax.benchmark stories`.

Times `stories.StoryWriter`: one jitted call that primes every story with a
seed in one scan and then samples `--story_length` characters for each of
`--batch` stories (default 64 x 500) through `capjax.decoding.sample` (top-k
/ top-p off, temperature 1). The model is the story model of
`configs/story/` (2 LSTM layers, `--hidden` state, `--embed` embedding) with
random parameters over 64 characters: its speed does not depend on the
values. Reports characters/s and stories/s, compile seconds apart, and the
matmul FLOPs of one call (the sampling loop counted story_length times) with
the achieved GFLOP/s.
"""

import time

import jax
import jax.numpy as jnp

from capjax import stories
from capjax.benchmarks import flops
from capjax.benchmarks import timing
from capjax.data import vocab as vocab_lib
from capjax.models import char_lm

DEFAULT_BATCH = 64
DEFAULT_HIDDEN = 256
DEFAULT_EMBED = 32
NUM_CHARS = 60
SEED_TEXT = '#dog '


def run(config: dict) -> list[dict]:
  """One record: `batch` stories of `story_length` characters."""
  batch = config.get('batch') or DEFAULT_BATCH
  length = config.get('story_length') or 500
  hidden = config.get('story_hidden') or DEFAULT_HIDDEN
  embed = config.get('story_embed') or DEFAULT_EMBED
  chars = vocab_lib.Vocab(
      [chr(c) for c in range(32, 32 + NUM_CHARS - 1)] + ['\n'])
  model = char_lm.CharLM(vocab_size=len(chars), embed_dim=embed,
                         hidden_dim=hidden, num_layers=2)
  params = jax.jit(model.init)(
      jax.random.key(0), jnp.zeros((1, 8), jnp.int32))['params']
  writer = stories.StoryWriter(model, chars, length=length, max_seed_len=16)
  ids, lengths = writer.encode_seeds([SEED_TEXT] * batch)
  ids, lengths = jnp.asarray(ids), jnp.asarray(lengths)
  rng = jax.random.key(1)
  temperature = jnp.float32(1.0)

  def generate(p, i, n, r, t):
    return writer.generate(p, i, n, r, t)

  start = time.perf_counter()
  compiled = jax.jit(generate).lower(params, ids, lengths, rng,
                                     temperature).compile()
  compile_s = time.perf_counter() - start
  t, result = timing.time_fn(
      lambda: compiled(params, ids, lengths, rng, temperature),
      config['repeats'], config['warmup'], between=config.get('between'))
  if result.shape != (batch, length):
    raise AssertionError(f'Generated {result.shape}, not {(batch, length)}.')
  gflop = flops.matmul_flops(generate, params, ids, lengths, rng, temperature,
                             while_trips=length) / 1e9
  seconds = t.median_seconds
  return [dict(
      benchmark='stories', batch=batch, story_length=length, hidden=hidden,
      embed=embed, layers=2, chars=len(chars),
      batch_ms=1e3 * seconds, min_batch_ms=1e3 * t.min_seconds,
      max_batch_ms=1e3 * t.max_seconds,
      chars_per_s=batch * length / seconds, stories_per_s=batch / seconds,
      compile_s=compile_s, gflop_per_batch=gflop,
      achieved_gflop_per_s=gflop / seconds, repeats=t.repeats,
      warmup=t.warmup)]
