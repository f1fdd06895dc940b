"""Sampling captions from a step function: temperature, top-k, top-p."""

import dataclasses
from typing import NamedTuple

import jax
from jax import lax
from jax import numpy as jnp

from capjax.decoding import constraints as decoding_constraints
from capjax.decoding import step as decoding_step
from capjax.decoding import top_k as decoding_top_k

NEG_INF = decoding_step.NEG_INF


@dataclasses.dataclass(frozen=True)
class SampleSettings:
  """Static settings of `sample` (hashable: one compilation each).

  The temperature and the length penalty are traced arguments instead, so
  other values do not recompile.
  """

  num_samples: int
  max_len: int
  top_k: int = 0
  top_p: float = 1.0
  bos_id: int = decoding_step.BOS_ID
  eos_id: int = decoding_step.EOS_ID
  pad_id: int = decoding_step.PAD_ID
  length_norm: str = 'gnmt'
  constraints: decoding_constraints.Constraints = (
    decoding_constraints.Constraints()
  )
  argmax: bool = False  # take the most probable allowed token (greedy)

  def validate(self) -> None:
    """Raises ValueError naming the bad setting."""
    if self.num_samples < 1:
      raise ValueError(f'num_samples must be >= 1, got {self.num_samples}.')
    if self.max_len < 1:
      raise ValueError(f'max_len must be >= 1, got {self.max_len}.')
    if self.top_k < 0:
      raise ValueError(f'top_k must be >= 0 (0: off), got {self.top_k}.')
    if not 0 < self.top_p <= 1:
      raise ValueError(f'top_p must be in (0, 1] (1: off), got {self.top_p}.')
    if self.length_norm not in decoding_step.LENGTH_NORMS:
      raise ValueError(
        f'length_norm must be one of {decoding_step.LENGTH_NORMS}, got '
        f'{self.length_norm!r}.'
      )
    self.constraints.validate(self.eos_id)


class SampleState(NamedTuple):
  """The loop state of `sample`."""

  step: jax.Array  # [] int32, tokens emitted so far
  tokens: jax.Array  # [batch, samples] int32, last token (PAD once ended)
  seqs: jax.Array  # [batch, samples, max_len] int32
  logp: jax.Array  # [batch, samples] float32, summed model log-probs
  length: jax.Array  # [batch, samples] int32, tokens emitted, EOS included
  done: jax.Array  # [batch, samples] bool, EOS emitted
  carry: decoding_step.Carry  # leaves [batch, samples, ...]


def sample(
  step_fn: decoding_step.StepFn,
  init_carry: decoding_step.Carry,
  rng: jax.Array,
  *,
  max_len: int,
  num_samples: int = 1,
  temperature: float = 1.0,
  top_k: int = 0,
  top_p: float = 1.0,
  bos_id: int = decoding_step.BOS_ID,
  eos_id: int = decoding_step.EOS_ID,
  pad_id: int = decoding_step.PAD_ID,
  length_penalty: float = 0.0,
  length_norm: str = 'gnmt',
  constraints: decoding_constraints.Constraints | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Draws `num_samples` captions per image in one compiled loop.

  Each step bans what the constraints ban, divides the logits by the
  temperature, keeps the `top_k` most probable tokens (ties with the k-th
  kept too), then the smallest most-probable set whose probability reaches
  `top_p` (at least one token), and draws from the renormalised rest. The
  loop ends when every sample has emitted EOS, or at max_len.

  Args:
    step_fn: the model's `StepFn` (see `beam_search` on `Partial`).
    init_carry: pytree of leaves [batch, ...]; the samples dim is added.
    rng: a `jax.random.key`; step t draws with `fold_in(rng, t)`.
    max_len: T, the most tokens emitted (EOS included).
    num_samples: N, captions per image.
    temperature: > 0; below 1 sharpens, above 1 flattens.
    top_k: keep this many most probable tokens; 0 keeps all.
    top_p: nucleus mass in (0, 1]; 1 keeps all.
    bos_id, eos_id, pad_id: token ids.
    length_penalty, length_norm: the score's normaliser, as in beam search.
    constraints: `decoding_constraints.Constraints`; none by default.

  Returns:
    sequences: [batch, N, T] int32 in draw order, without BOS, EOS kept, PAD
      after it.
    scores: [batch, N] float32, the model's own summed log-probs of the drawn
      tokens (temperature 1, no filtering), up to and including EOS, over the
      length normaliser.
  """
  settings = SampleSettings(
    num_samples=num_samples,
    max_len=max_len,
    top_k=top_k,
    top_p=float(top_p),
    bos_id=bos_id,
    eos_id=eos_id,
    pad_id=pad_id,
    length_norm=length_norm,
    constraints=constraints or decoding_constraints.Constraints(),
  )
  settings.validate()
  if isinstance(temperature, (int, float)) and not temperature > 0:
    raise ValueError(
      f'temperature must be > 0, got {temperature} (greedy gives the most '
      'probable caption).'
    )
  return _sample_jit(
    decoding_step.as_partial(step_fn),
    init_carry,
    rng,
    jnp.asarray(temperature, jnp.float32),
    jnp.asarray(length_penalty, jnp.float32),
    settings,
  )


def greedy(
  step_fn: decoding_step.StepFn,
  init_carry: decoding_step.Carry,
  *,
  max_len: int,
  bos_id: int = decoding_step.BOS_ID,
  eos_id: int = decoding_step.EOS_ID,
  pad_id: int = decoding_step.PAD_ID,
  length_penalty: float = 0.0,
  length_norm: str = 'gnmt',
  constraints: decoding_constraints.Constraints | None = None,
  early_stop: bool = True,
) -> tuple[jax.Array, jax.Array]:
  """Greedy decoding: the most probable allowed token at every step, EOS
  included, until EOS (or max_len).

  This is the textbook greedy caption. A one-beam beam search is not: it
  keeps every EOS ending met on the way and returns the best-scoring one,
  which with no length penalty is usually a caption cut after two or three
  words (`method='beam', beam_size=1` still gives it).

  Args:
    As `sample`; `early_stop` is accepted for the decoders' common settings
    (the loop always ends once every caption has its EOS).

  Returns:
    sequences: [batch, 1, T] int32 and scores: [batch, 1] float32 (summed
    log-probs over the length normaliser).
  """
  del early_stop
  settings = SampleSettings(
    num_samples=1,
    max_len=max_len,
    bos_id=bos_id,
    eos_id=eos_id,
    pad_id=pad_id,
    length_norm=length_norm,
    constraints=constraints or decoding_constraints.Constraints(),
    argmax=True,
  )
  settings.validate()
  return _sample_jit(
    decoding_step.as_partial(step_fn),
    init_carry,
    jax.random.key(0),  # unused: nothing is drawn
    jnp.ones([], jnp.float32),
    jnp.asarray(length_penalty, jnp.float32),
    settings,
  )


def filter_logits(
  logits: jax.Array, top_k: int = 0, top_p: float = 1.0
) -> jax.Array:
  """Sets to -inf the logits outside the top-k and then the top-p nucleus.

  Args:
    logits: [..., vocab] float32 (already divided by the temperature).
    top_k: keep the k largest (and ties with the k-th); 0 keeps all.
    top_p: keep the smallest set of largest logits whose softmax mass reaches
      top_p (at least one, ties with the last kept too); 1 keeps all.

  Returns:
    [..., vocab] float32.
  """
  vocab = logits.shape[-1]
  if 0 < top_k < vocab:
    kth = decoding_top_k.batch_top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, NEG_INF, logits)
  if top_p < 1.0:
    ranked, _ = decoding_top_k.batch_top_k(
        logits, top_k if 0 < top_k < vocab else vocab)
    probs = jax.nn.softmax(ranked, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    last = jnp.min(
      jnp.where(mass_before < top_p, ranked, jnp.inf), axis=-1, keepdims=True
    )
    logits = jnp.where(logits < last, NEG_INF, logits)
  return logits


def _sample_impl(
  step_fn: decoding_step.StepFn,
  init_carry: decoding_step.Carry,
  rng: jax.Array,
  temperature: jax.Array,
  length_penalty: jax.Array,
  settings: SampleSettings,
) -> tuple[jax.Array, jax.Array]:
  """The traced body of `sample`; see there."""
  s = settings
  batch = decoding_step.batch_size(init_carry)
  shape = (batch, s.num_samples)
  state = SampleState(
    step=jnp.zeros((), jnp.int32),
    tokens=jnp.full(shape, s.bos_id, jnp.int32),
    seqs=jnp.full(shape + (s.max_len,), s.pad_id, jnp.int32),
    logp=jnp.zeros(shape, jnp.float32),
    length=jnp.zeros(shape, jnp.int32),
    done=jnp.zeros(shape, bool),
    carry=decoding_step.add_beam_dim(init_carry, s.num_samples),
  )

  def cond(state: SampleState) -> jax.Array:
    return (state.step < s.max_len) & ~jnp.all(state.done)

  def body(state: SampleState) -> SampleState:
    step = state.step
    logits, carry = decoding_step.call_step(step_fn, state.tokens, state.carry)
    vocab = logits.shape[-1]
    decoding_step.check_ids(
      vocab, bos_id=s.bos_id, eos_id=s.eos_id, pad_id=s.pad_id
    )
    allowed = logits
    word_bans, eos_bans = decoding_constraints.bans(
      s.constraints, state.seqs, step, vocab, s.eos_id
    )
    if word_bans is not None:
      allowed = jnp.where(word_bans, NEG_INF, allowed)
    if eos_bans is not None:
      is_eos = jnp.arange(vocab) == s.eos_id
      allowed = jnp.where(is_eos & eos_bans[..., None], NEG_INF, allowed)
    if s.argmax:
      drawn = jnp.argmax(allowed, axis=-1).astype(jnp.int32)
    else:
      allowed = filter_logits(allowed / temperature, s.top_k, s.top_p)
      drawn = jax.random.categorical(jax.random.fold_in(rng, step), allowed)
      drawn = drawn.astype(jnp.int32)
    logp = jnp.take_along_axis(logits, drawn[..., None], axis=-1)[..., 0]
    logp -= jax.nn.logsumexp(logits, axis=-1)
    token = jnp.where(state.done, s.pad_id, drawn)
    return SampleState(
      step=step + 1,
      tokens=token,
      seqs=lax.dynamic_update_index_in_dim(state.seqs, token, step, 2),
      logp=state.logp + jnp.where(state.done, 0.0, logp),
      length=state.length + (~state.done).astype(jnp.int32),
      done=state.done | (token == s.eos_id),
      carry=carry,
    )

  state = lax.while_loop(cond, body, state)
  normalizer = decoding_step.length_normalizer(
    state.length, length_penalty, s.length_norm
  )
  return state.seqs, state.logp / normalizer


_sample_jit = jax.jit(_sample_impl, static_argnames='settings')
