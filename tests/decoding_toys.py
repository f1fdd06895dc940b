"""Toy step functions and plain-Python reference decoders for decoding tests."""

import collections
import dataclasses
import itertools
from typing import Callable

import jax
from jax import numpy as jnp
import numpy as np

from capjax.decoding import constraints as decoding_constraints
from capjax.decoding import step as decoding_step

BOS = decoding_step.BOS_ID
EOS = decoding_step.EOS_ID
UNK = decoding_constraints.UNK_ID

# next_logp(row, prefix) -> [vocab] float64 log-probs of the next token after
# BOS + prefix for image `row` (prefix: the tokens emitted so far).
NextLogp = Callable[[int, tuple[int, ...]], np.ndarray]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
  logits = logits.astype(np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@dataclasses.dataclass
class ToyModel:
  """A step function with its BOS state and a NumPy reference of it."""

  step_fn: jax.tree_util.Partial  # the StepFn, arrays bound as arguments
  init_carry: dict  # leaves [batch, ...]
  next_logp: NextLogp
  vocab: int


def _table_step(table, tokens, carry):
  """Logits looked up from table[image, position, previous token]."""
  position = carry['position']
  rows = jnp.arange(tokens.shape[0])[:, None]
  # table is [batch, length, vocab, vocab]: per-image context indexed by the
  # row, broadcast against the [batch, beam] tokens; never copied per beam.
  logits = table[rows, jnp.minimum(position, table.shape[1] - 1), tokens]
  return logits, {'position': position + 1}


def table_model(
  seed: int,
  batch: int,
  length: int,
  vocab: int,
  eos_bias: float = 0.0,
  bigram_bias: np.ndarray | None = None,
) -> ToyModel:
  """A random bigram-and-position table per image.

  Args:
    seed: NumPy seed.
    batch: images.
    length: positions in the table (>= max_len of the search).
    vocab: V.
    eos_bias: added to the EOS logit (larger: captions end sooner).
    bigram_bias: [vocab, vocab] added to the logits of (previous, next).

  Returns:
    The model: its carry is a position counter [batch].
  """
  table = np.random.default_rng(seed).normal(size=(batch, length, vocab, vocab))
  table[..., EOS] += eos_bias
  if bigram_bias is not None:
    table += bigram_bias
  table = table.astype(np.float32)

  def next_logp(row, prefix):
    previous = prefix[-1] if prefix else BOS
    return _log_softmax(table[row, len(prefix), previous])

  return ToyModel(
    step_fn=jax.tree_util.Partial(_table_step, jnp.asarray(table)),
    init_carry={'position': jnp.zeros((batch,), jnp.int32)},
    next_logp=next_logp,
    vocab=vocab,
  )


def _rnn_cell(params, context, tokens, state):
  """One step of the toy attention RNN, shared by JAX and NumPy."""
  xp = jnp if isinstance(state, jax.Array) else np
  # state [batch, beam, H]; context [batch, L, D] is per image: the einsums
  # broadcast it over the beam dim instead of tiling it.
  query = state @ params['query']
  logits = xp.einsum('bkd,bld->bkl', query, context)
  weights = xp.exp(logits - logits.max(-1, keepdims=True))
  weights = weights / weights.sum(-1, keepdims=True)
  read = xp.einsum('bkl,bld->bkd', weights, context)
  state = xp.tanh(
    params['embed'][tokens] + state @ params['recur'] + read @ params['read']
  )
  return state @ params['out'], state


def _rnn_step(params, context, tokens, carry):
  logits, state = _rnn_cell(params, context, tokens, carry['h'])
  return logits, {'h': state}


def rnn_model(
  seed: int,
  batch: int,
  vocab: int,
  hidden: int = 8,
  context_len: int = 3,
  context_dim: int = 6,
  zero_rows: tuple[int, ...] = (),
) -> ToyModel:
  """A small random RNN attending over a per-image context [batch, L, D].

  Args:
    seed: NumPy seed.
    batch: images.
    vocab: V.
    hidden: H.
    context_len: L.
    context_dim: D.
    zero_rows: images whose context is all zeros (padding rows).

  Returns:
    The model: its carry is the hidden state [batch, H].
  """
  rng = np.random.default_rng(seed)
  shapes = {
    'embed': (vocab, hidden),
    'recur': (hidden, hidden),
    'query': (hidden, context_dim),
    'read': (context_dim, hidden),
    'out': (hidden, vocab),
    'init': (context_dim, hidden),
  }
  params = {
    name: (rng.normal(size=shape) * (2.0 if name == 'out' else 0.7)).astype(
      np.float32
    )
    for name, shape in shapes.items()
  }
  context = rng.normal(size=(batch, context_len, context_dim))
  context[list(zero_rows)] = 0.0
  context = context.astype(np.float32)
  init = np.tanh(context.mean(1) @ params['init'])

  def next_logp(row, prefix):
    params64 = {k: v.astype(np.float64) for k, v in params.items()}
    state = init[row].astype(np.float64)[None, None]
    logits = None
    for token in (BOS,) + tuple(prefix):
      logits, state = _rnn_cell(
        params64, context[row : row + 1], np.array([[token]]), state
      )
    return _log_softmax(logits[0, 0])

  jax_params = jax.tree.map(jnp.asarray, params)
  return ToyModel(
    step_fn=jax.tree_util.Partial(_rnn_step, jax_params, jnp.asarray(context)),
    init_carry={'h': jnp.asarray(init)},
    next_logp=next_logp,
    vocab=vocab,
  )


def normalizer(length_penalty: float, length_norm: str) -> Callable:
  """length -> divisor, written plainly."""
  if length_norm == 'gnmt':
    return lambda n: ((5.0 + n) / 6.0) ** length_penalty
  return lambda n: float(n) ** length_penalty


def word_allowed(
  constraints: decoding_constraints.Constraints,
  prefix: tuple[int, ...],
  token: int,
) -> bool:
  """Whether the rules allow `token` (not EOS) after `prefix`, plainly."""
  c = constraints
  if c.suppress_unk and token == c.unk_id:
    return False
  if token in c.banned_ids:
    return False
  if c.no_repeat and prefix and token == prefix[-1]:
    return False
  if c.no_repeat_any and token in prefix:
    return False
  if c.block_trigrams and len(prefix) >= 2:
    seen = {tuple(prefix[j : j + 3]) for j in range(len(prefix) - 2)}
    if (prefix[-2], prefix[-1], token) in seen:
      return False
  return True


def eos_allowed(
  constraints: decoding_constraints.Constraints,
  prefix: tuple[int, ...],
  vocab: int,
) -> bool:
  """Whether the rules allow EOS after `prefix`, plainly.

  EOS is allowed when the rules allow no word at all.
  """
  stuck = not any(
    word_allowed(constraints, prefix, v) for v in range(vocab) if v != EOS
  )
  if stuck:
    return True
  if len(prefix) < constraints.min_len:
    return False
  return not (prefix and prefix[-1] in constraints.no_end_after)


def exhaustive(
  next_logp: NextLogp,
  row: int,
  *,
  vocab: int,
  max_len: int,
  norm: Callable,
) -> list[tuple[tuple[int, ...], float]]:
  """Every caption of at most max_len tokens, scored, best first.

  A caption ends with EOS, or is cut at max_len tokens without EOS.
  """
  results = []
  words = [v for v in range(vocab) if v != EOS]
  for n in range(max_len):
    for prefix in itertools.product(words, repeat=n):
      total = sum(
        next_logp(row, prefix[:i])[prefix[i]] for i in range(len(prefix))
      )
      logp = next_logp(row, prefix)
      results.append((prefix + (EOS,), (total + logp[EOS]) / norm(n + 1)))
      if n == max_len - 1:
        for v in words:
          results.append((prefix + (v,), (total + logp[v]) / norm(max_len)))
  return sorted(results, key=lambda item: -item[1])


def reference_beam_search(
  next_logp: NextLogp,
  row: int,
  *,
  vocab: int,
  beam_size: int,
  max_len: int,
  num_return: int,
  norm: Callable,
  num_groups: int = 1,
  diversity: float = 0.0,
  constraints: decoding_constraints.Constraints | None = None,
) -> list[tuple[tuple[int, ...], float]]:
  """Beam search (diverse with several groups), written plainly.

  Each group keeps its live beams and its finished captions; at each step a
  live beam offers its EOS extension to its group's finished list (unless an
  earlier group offered the same caption at this step) and the group keeps
  its beam_size / G best non-EOS extensions, ranked by summed log-prob minus
  `diversity` times the count of earlier groups' choices of that token at
  this step. Beams live at max_len are finished there. No early stop.
  """
  rules = constraints or decoding_constraints.Constraints()
  per_group = beam_size // num_groups
  pool = num_return if num_groups == 1 else per_group
  live = [[((), 0.0)] for _ in range(num_groups)]
  finished = [[] for _ in range(num_groups)]

  def offer(group, seq, score, offered):
    if score > -np.inf and seq not in offered:
      finished[group].append((seq, score))
      offered.add(seq)

  for t in range(max_len):
    offered = set()
    counts = collections.Counter()
    for g in range(num_groups):
      candidates = []
      for prefix, total in live[g]:
        logp = next_logp(row, prefix)
        if eos_allowed(rules, prefix, vocab):
          offer(g, prefix + (EOS,), (total + logp[EOS]) / norm(t + 1), offered)
        for v in range(vocab):
          if v != EOS and word_allowed(rules, prefix, v):
            key = total + logp[v] - diversity * counts[v]
            candidates.append((key, total + logp[v], prefix + (v,)))
      candidates.sort(key=lambda item: -item[0])
      live[g] = [(seq, true) for _, true, seq in candidates[:per_group]]
      for seq, _ in live[g]:
        counts[seq[-1]] += 1
  offered = set()
  for g in range(num_groups):
    for prefix, total in live[g]:
      offer(g, prefix, total / norm(max_len), offered)
  best = []
  for g in range(num_groups):
    best += sorted(finished[g], key=lambda item: -item[1])[:pool]
  return sorted(best, key=lambda item: -item[1])[:num_return]


def reference_greedy(
  next_logp: Callable,
  row: int,
  *,
  vocab: int,
  max_len: int,
  norm: Callable,
  constraints: decoding_constraints.Constraints | None = None,
) -> tuple[tuple[int, ...], float]:
  """The textbook greedy caption of one image, plainly: the most probable
  allowed token (EOS included) at every step until EOS or max_len.

  Returns:
    (tokens, summed log-prob / norm(length)).
  """
  rules = constraints or decoding_constraints.Constraints()
  prefix, total = (), 0.0
  while len(prefix) < max_len and (not prefix or prefix[-1] != EOS):
    logp = next_logp(row, prefix)
    allowed = [v for v in range(vocab)
               if (eos_allowed(rules, prefix, vocab) if v == EOS
                   else word_allowed(rules, prefix, v))]
    token = max(allowed, key=lambda v: (logp[v], -v))
    prefix, total = prefix + (token,), total + float(logp[token])
  return prefix, total / norm(len(prefix))


def padded(seq: tuple[int, ...], max_len: int) -> list[int]:
  """The caption as the decoders return it: PAD after EOS."""
  return list(seq) + [decoding_step.PAD_ID] * (max_len - len(seq))
