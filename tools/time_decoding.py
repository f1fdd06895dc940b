"""Times greedy and beam search on a plain LSTM step (design-time measurement).

  python tools/time_decoding.py --batch=256 --beam=3 --max_len=20 \
      --vocab=5000 --hidden=512 --embed=256

Prints the machine's float32 matmul rate, the step function alone, and each
decoder's compile time, step time, captions/s and share of the matmul rate
(FLOPs counted from the step's matmuls). Every search runs all max_len steps
(early_stop=False). `python -m capjax.benchmark decode` supersedes it.
"""

import functools
import json
import time

from absl import app
from absl import flags
import jax
from jax import numpy as jnp
import numpy as np

from capjax import decoding

_BATCH = flags.DEFINE_integer('batch', 256, 'Images per batch.')
_BEAM = flags.DEFINE_integer('beam', 3, 'Beam size.')
_MAX_LEN = flags.DEFINE_integer('max_len', 20, 'Tokens per caption.')
_VOCAB = flags.DEFINE_integer('vocab', 5000, 'Vocabulary size.')
_HIDDEN = flags.DEFINE_integer('hidden', 512, 'LSTM units.')
_EMBED = flags.DEFINE_integer('embed', 256, 'Word embedding size.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed runs (median).')


def lstm_step(params, tokens, carry):
  """A plain LSTM captioner step: embed, LSTM cell, output layer."""
  h, c = carry['h'], carry['c']
  x = params['embed'][tokens]
  gates = x @ params['w_x'] + h @ params['w_h'] + params['b']
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  logits = h @ params['w_out'] + params['b_out']
  return logits, {'h': h, 'c': c}


def init_params(rng, vocab, embed, hidden):
  """Random float32 params of `lstm_step`."""
  keys = jax.random.split(rng, 4)

  def scale(n):
    return 1.0 / np.sqrt(n)

  return {
    'embed': jax.random.normal(keys[0], (vocab, embed)) * 0.1,
    'w_x': jax.random.normal(keys[1], (embed, 4 * hidden)) * scale(embed),
    'w_h': jax.random.normal(keys[2], (hidden, 4 * hidden)) * scale(hidden),
    'b': jnp.zeros((4 * hidden,)),
    'w_out': jax.random.normal(keys[3], (hidden, vocab)) * scale(hidden),
    'b_out': jnp.zeros((vocab,)),
  }


def timed(fn, *args, repeats):
  """(first call seconds, median seconds of later calls) of fn(*args)."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return first, float(np.median(times))


def matmul_rate(repeats):
  """GFLOP/s of a 2048^3 float32 matmul."""
  n = 2048
  a = jax.random.normal(jax.random.key(0), (n, n))
  _, seconds = timed(jax.jit(jnp.matmul), a, a, repeats=repeats)
  return 2 * n**3 / seconds / 1e9


def main(argv):
  del argv
  batch, beam, max_len = _BATCH.value, _BEAM.value, _MAX_LEN.value
  vocab, hidden, embed = _VOCAB.value, _HIDDEN.value, _EMBED.value
  repeats = _REPEATS.value
  params = init_params(jax.random.key(1), vocab, embed, hidden)
  init = {
    'h': jax.random.normal(jax.random.key(2), (batch, hidden)) * 0.1,
    'c': jnp.zeros((batch, hidden)),
  }
  rate = matmul_rate(repeats)
  print(json.dumps({'matmul_gflop_per_s': round(rate, 1)}))

  def flop_per_step(rows):
    # The matmuls of lstm_step: input and recurrent projections, output layer.
    return 2 * rows * (4 * hidden * (embed + hidden) + hidden * vocab)

  step_only = jax.jit(lstm_step)
  tokens = jnp.ones((batch, beam), jnp.int32)
  carry = jax.tree.map(lambda x: jnp.repeat(x[:, None], beam, 1), init)
  _, seconds = timed(step_only, params, tokens, carry, repeats=repeats)
  print(
    json.dumps(
      {
        'mode': 'step_fn_only',
        'beam': beam,
        'step_ms': round(seconds * 1e3, 2),
        'share_of_matmul': round(
          flop_per_step(batch * beam) / seconds / 1e9 / rate, 3
        ),
      }
    )
  )

  @functools.partial(jax.jit, static_argnames=('method', 'beam_size'))
  def run(params, init, method, beam_size):
    step_fn = jax.tree_util.Partial(lstm_step, params)
    if method == 'greedy':
      return decoding.greedy(step_fn, init, max_len=max_len, early_stop=False)
    return decoding.beam_search(
      step_fn, init, beam_size=beam_size, max_len=max_len, early_stop=False
    )

  for method, width in (('greedy', 1), ('beam', beam)):
    first, seconds = timed(
      functools.partial(run, method=method, beam_size=width),
      params,
      init,
      repeats=repeats,
    )
    flop = flop_per_step(batch * width) * max_len
    print(
      json.dumps(
        {
          'mode': method,
          'beam': width,
          'batch': batch,
          'max_len': max_len,
          'compile_s': round(first - seconds, 2),
          'step_ms': round(seconds / max_len * 1e3, 2),
          'captions_per_s': round(batch / seconds, 1),
          'achieved_gflop_per_s': round(flop / seconds / 1e9, 1),
          'share_of_matmul': round(flop / seconds / 1e9 / rate, 3),
        }
      )
    )


if __name__ == '__main__':
  app.run(main)
