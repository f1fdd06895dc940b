"""The benchmark train step by parts, capjax beside PyTorch: `train_parts`.

`python -m capjax.benchmark train_parts --dtype=float32,bfloat16` times the
parts of the benchmark model's train step (`bench_model`, B64 T20 V5000 H512
E256 unless the size flags of `train_step` say otherwise) alone, forward
and backward, each part in capjax and in PyTorch (when torch imports) one
call of each in turn, so that the ratios of a part compare
the same stretch of a noisy machine:

- `output_loss`: the output layer and the masked softmax cross-entropy over
  every position (capjax: `output_layer.nll`, what the captioners train
  with; `output_loss_unfused`: a Dense layer then `losses.token_nll`, the
  path it replaced; PyTorch: `nn.Linear` then `F.cross_entropy`);
- `embedding_grad`: the gradient of the word-embedding lookup;
- `lstm`: the input projection and the LSTM over T + 1 steps
  (`recurrences.lstm_recurrence` against `nn.LSTM`);
- `adam`: one Adam update of the model's parameters plus their global norm
  (capjax: optax, as `train.train_step` runs it; PyTorch: `optim.Adam`).

`--dtype=bfloat16` runs capjax's matmuls in bfloat16 with float32
accumulation (`model.dtype`) and PyTorch's under its CPU autocast.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from capjax import losses
from capjax.benchmarks import bench_model
from capjax.benchmarks import dtypes
from capjax.benchmarks import timing
from capjax.benchmarks import torch_reference
from capjax.benchmarks import train_step
from capjax.models import output_layer
from capjax.models import precision
from capjax.models import recurrences

PARTS = ('output_loss', 'embedding_grad', 'lstm', 'adam')


def _arrays(size: bench_model.ModelSize, seed: int = 0) -> dict:
  """Random float32 inputs of every part (numpy), and the benchmark batch."""
  rng = np.random.default_rng(seed)
  rows = size.batch * size.max_len
  normal = lambda *shape: rng.standard_normal(shape).astype(np.float32)
  tokens = bench_model.caption_tokens(size, seed)
  return {
      'hidden': normal(rows, size.hidden),
      'out_kernel': normal(size.hidden, size.vocab) * 0.03,
      'out_bias': np.zeros(size.vocab, np.float32),
      'targets': tokens[:, 1:].reshape(-1),
      'inputs': tokens[:, :-1].T.copy(),  # [T, B] time-major
      'table': normal(size.vocab, size.embed),
      'd_words': normal(size.max_len, size.batch, size.embed),
      'x': normal(size.max_len + 1, size.batch, size.embed),
      'in_kernel': normal(size.embed, 4 * size.hidden) * 0.05,
      'in_bias': np.zeros(4 * size.hidden, np.float32),
      'recurrent': normal(size.hidden, 4 * size.hidden) * 0.04,
      'd_hidden': normal(size.max_len + 1, size.batch, size.hidden),
  }


def _param_shapes(size: bench_model.ModelSize) -> list[tuple[int, ...]]:
  """The benchmark Show-and-Tell's parameter shapes (Adam's work)."""
  e, h, v = size.embed, size.hidden, size.vocab
  return [(v, e), (size.feature_dim, e), (e,), (e, 4 * h), (4 * h,),
          (h, 4 * h), (h, v), (v,)]


def capjax_parts(size: bench_model.ModelSize, dtype: str) -> dict:
  """part -> a call of no arguments running it (jitted, inputs on device)."""
  a = jax.device_put(_arrays(size))
  compute = precision.compute_dtype(dtype)
  weights = (a['targets'] != bench_model.PAD_ID).astype(jnp.float32)

  def fused(h, w, b):
    nll = output_layer.nll(h, w, b, a['targets'], compute)
    return jnp.sum(nll * weights) / jnp.sum(weights)

  def unfused(h, w, b):
    logits = precision.matmul(h, w, compute) + b
    return losses.cross_entropy_rows(logits, a['targets'], weights) / jnp.sum(
        weights)

  def embedding(table, tokens, d_words):
    return jnp.sum(jnp.take(table, tokens, axis=0) * d_words)

  def lstm(x, in_kernel, in_bias, recurrent, d_hidden):
    projected = precision.matmul(x, in_kernel, compute) + in_bias
    zeros = jnp.zeros((size.batch, size.hidden), jnp.float32)
    _, hs = recurrences.lstm_recurrence(
        recurrent, projected, zeros, zeros, 1, compute)
    return jnp.sum(hs * d_hidden)

  grad = lambda fn, n: jax.jit(jax.value_and_grad(fn, argnums=tuple(range(n))))
  parts = {
      'output_loss': functools.partial(
          grad(fused, 3), a['hidden'], a['out_kernel'], a['out_bias']),
      'output_loss_unfused': functools.partial(
          grad(unfused, 3), a['hidden'], a['out_kernel'], a['out_bias']),
      'embedding_grad': functools.partial(
          jax.jit(jax.grad(embedding)), a['table'], a['inputs'],
          a['d_words']),
      'lstm': functools.partial(
          grad(lstm, 4), a['x'], a['in_kernel'], a['in_bias'],
          a['recurrent'], a['d_hidden']),
  }
  parts['adam'] = _capjax_adam(size)
  return parts


def _capjax_adam(size: bench_model.ModelSize):
  """One donated Adam step and the gradients' global norm per call."""
  rng = np.random.default_rng(1)
  shapes = _param_shapes(size)
  params = [jnp.asarray(rng.standard_normal(s), jnp.float32) for s in shapes]
  grads = [jnp.asarray(rng.standard_normal(s), jnp.float32) for s in shapes]
  tx = optax.adam(bench_model.LEARNING_RATE)
  state = [params, tx.init(params)]

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def update(params, opt_state, grads):
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state,
            optax.tree.norm(grads))

  def step():
    state[0], state[1], norm = update(state[0], state[1], grads)
    return norm

  return step


def torch_parts(size: bench_model.ModelSize, dtype: str) -> dict:
  """The same parts in PyTorch ({} without torch)."""
  if not torch_reference.available():
    return {}
  import contextlib  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from torch.nn import functional  # pylint: disable=g-import-not-at-top

  torch.manual_seed(0)
  a = {k: torch.from_numpy(v) for k, v in _arrays(size).items()}
  if dtype == 'float32':
    precision_context = contextlib.nullcontext
  else:
    precision_context = lambda: torch.autocast('cpu', dtype=torch.bfloat16)
  hidden = a['hidden'].clone().requires_grad_(True)
  output = torch.nn.Linear(size.hidden, size.vocab)
  targets = a['targets'].long()
  embedding = torch.nn.Embedding(size.vocab, size.embed)
  tokens = a['inputs'].long()
  lstm = torch.nn.LSTM(size.embed, size.hidden)  # time-major, as capjax's
  x = a['x'].clone().requires_grad_(True)
  params = [torch.nn.Parameter(torch.randn(*s)) for s in _param_shapes(size)]
  for p in params:
    p.grad = torch.randn(*p.shape)
  adam = torch.optim.Adam(params, lr=bench_model.LEARNING_RATE)

  def output_loss():
    hidden.grad = None
    output.zero_grad(set_to_none=True)
    with precision_context():
      loss = functional.cross_entropy(
          output(hidden), targets, ignore_index=bench_model.PAD_ID)
    loss.backward()
    return float(loss.detach())

  def embedding_grad():
    embedding.zero_grad(set_to_none=True)
    (embedding(tokens) * a['d_words']).sum().backward()
    return 0.0

  def lstm_part():
    x.grad = None
    lstm.zero_grad(set_to_none=True)
    with precision_context():
      hs, _ = lstm(x)
    (hs.float() * a['d_hidden']).sum().backward()
    return 0.0

  def adam_part():
    adam.step()
    return float(torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))

  return {'output_loss': output_loss, 'embedding_grad': embedding_grad,
          'lstm': lstm_part, 'adam': adam_part}


def run(config: dict) -> list[dict]:
  """Times every part per `--dtype`, capjax and PyTorch in turns."""
  size = train_step.model_size(config, dtype='float32', output_capacity=0.0)
  if size.decoder != 'lstm':
    raise ValueError(f'train_parts times the LSTM Show-and-Tell only; got '
                     f'--decoder={size.decoder}.')
  contenders = {}
  for dtype in dtypes.from_config(config):
    for part, fn in capjax_parts(size, dtype).items():
      contenders[('capjax', dtype, part)] = fn
    if config.get('torch', True):
      for part, fn in torch_parts(size, dtype).items():
        contenders[('pytorch', dtype, part)] = fn
  timed = timing.time_alternating(contenders, config['repeats'],
                                  config['warmup'],
                                  between=config.get('between'))
  records = []
  for (impl, dtype, part), (t, _) in timed.items():
    records.append(dict(
        benchmark='train_parts', impl=impl, part=part, dtype=dtype,
        **{k: v for k, v in size.as_record().items() if k != 'dtype'},
        ms=1e3 * t.median_seconds, min_ms=1e3 * t.min_seconds,
        max_ms=1e3 * t.max_seconds, compile_s=t.first_seconds,
        repeats=t.repeats, warmup=t.warmup,
    ))
  return records
