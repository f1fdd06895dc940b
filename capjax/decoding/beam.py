"""Beam search and diverse beam search over a step function, jitted."""

import dataclasses
import functools
from typing import NamedTuple

import einops
import jax
from jax import lax
from jax import numpy as jnp

from capjax.decoding import constraints as decoding_constraints
from capjax.decoding import step as decoding_step
from capjax.decoding import top_k as decoding_top_k

NEG_INF = decoding_step.NEG_INF


@dataclasses.dataclass(frozen=True)
class BeamSettings:
  """Static settings of a beam search (hashable: one compilation each).

  The length penalty and the diversity strength are not among them: they are
  traced arguments, so trying other values does not recompile.
  """

  beam_size: int
  max_len: int
  bos_id: int = decoding_step.BOS_ID
  eos_id: int = decoding_step.EOS_ID
  pad_id: int = decoding_step.PAD_ID
  length_norm: str = 'gnmt'
  num_return: int | None = None
  num_groups: int = 1
  early_stop: bool = True
  constraints: decoding_constraints.Constraints = (
    decoding_constraints.Constraints()
  )

  def validate(self) -> None:
    """Raises ValueError naming the bad setting."""
    if self.beam_size < 1:
      raise ValueError(f'beam_size must be >= 1, got {self.beam_size}.')
    if self.max_len < 1:
      raise ValueError(f'max_len must be >= 1, got {self.max_len}.')
    if self.num_groups < 1 or self.beam_size % self.num_groups:
      raise ValueError(
        f'num_groups ({self.num_groups}) must divide beam_size '
        f'({self.beam_size}).'
      )
    if not 1 <= self.returned <= self.beam_size:
      raise ValueError(
        f'num_return must be in [1, beam_size={self.beam_size}], got '
        f'{self.num_return}.'
      )
    if self.length_norm not in decoding_step.LENGTH_NORMS:
      raise ValueError(
        f'length_norm must be one of {decoding_step.LENGTH_NORMS}, got '
        f'{self.length_norm!r}.'
      )
    self.constraints.validate(self.eos_id)

  @property
  def returned(self) -> int:
    """How many hypotheses are returned per image."""
    return self.beam_size if self.num_return is None else self.num_return

  @property
  def pool_size(self) -> int:
    """Finished hypotheses kept per group during the search."""
    if self.num_groups == 1:
      return self.returned
    return self.beam_size // self.num_groups


class BeamState(NamedTuple):
  """The loop state of beam search; G groups of K / G beams (G = 1 usually)."""

  step: jax.Array  # [] int32, tokens emitted so far
  tokens: jax.Array  # [batch, beam] int32, last token of each live beam
  live_seqs: jax.Array  # [batch, beam, max_len] int32, PAD from `step` on
  live_logp: jax.Array  # [batch, beam] float32, summed log-probs; -inf: none
  carry: decoding_step.Carry  # leaves [batch, beam, ...]
  fin_seqs: jax.Array  # [batch, groups, pool, max_len] int32
  fin_scores: jax.Array  # [batch, groups, pool] float32, normalised, sorted


def beam_search(
  step_fn: decoding_step.StepFn,
  init_carry: decoding_step.Carry,
  *,
  beam_size: int,
  max_len: int,
  bos_id: int = decoding_step.BOS_ID,
  eos_id: int = decoding_step.EOS_ID,
  pad_id: int = decoding_step.PAD_ID,
  length_penalty: float = 0.0,
  length_norm: str = 'gnmt',
  num_return: int | None = None,
  constraints: decoding_constraints.Constraints | None = None,
  early_stop: bool = True,
) -> tuple[jax.Array, jax.Array]:
  """Beam search for a batch of images in one compiled loop.

  Live and finished hypotheses are kept apart: at every step each live beam
  offers its EOS extension to the finished pool and the `beam_size` best
  non-EOS extensions stay live, so the beam stays full however many finish.
  A hypothesis still live at `max_len` is returned too, cut there, scored by
  the sum of its `max_len` log-probs over the normaliser of `max_len`. The
  loop stops early once no live beam can reach the worst kept finished score
  (log-probs are <= 0, so a descendant scores at most its prefix's summed
  log-prob over the largest normaliser still possible): the result equals
  that of running to `max_len`.

  Args:
    step_fn: the model's `StepFn`. Pass a `jax.tree_util.Partial` to give it
      arrays (params, image context): they are traced arguments, so new
      params do not recompile. A plain function compiles once per function
      object.
    init_carry: pytree of leaves [batch, ...], the state at BOS; the search
      adds the beam dim.
    beam_size: K, live hypotheses per image.
    max_len: T, the most tokens emitted (EOS included).
    bos_id: first input token.
    eos_id: end token.
    pad_id: fills sequences after EOS.
    length_penalty: alpha of `length_normalizer`; 0 ranks by summed log-prob.
    length_norm: 'gnmt' or 'power' (see `length_normalizer`).
    num_return: N <= K hypotheses returned per image (default K).
    constraints: `decoding_constraints.Constraints`; none by default.
    early_stop: stop once no live beam can enter the n-best (same result);
      False always runs max_len steps (for timing).

  Returns:
    sequences: [batch, N, T] int32, best first, without BOS, EOS kept where
      emitted, PAD after it.
    scores: [batch, N] float32, summed log-probs up to and including EOS over
      `length_normalizer`; -inf (with PAD sequences) only where fewer than N
      hypotheses exist.
  """
  return diverse_beam_search(
    step_fn, init_carry, beam_size=beam_size, num_groups=1, diversity=0.0,
    max_len=max_len, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id,
    length_penalty=length_penalty, length_norm=length_norm,
    num_return=num_return, constraints=constraints, early_stop=early_stop,
  )


def diverse_beam_search(
  step_fn: decoding_step.StepFn,
  init_carry: decoding_step.Carry,
  *,
  beam_size: int,
  num_groups: int,
  diversity: float,
  max_len: int,
  bos_id: int = decoding_step.BOS_ID,
  eos_id: int = decoding_step.EOS_ID,
  pad_id: int = decoding_step.PAD_ID,
  length_penalty: float = 0.0,
  length_norm: str = 'gnmt',
  num_return: int | None = None,
  constraints: decoding_constraints.Constraints | None = None,
  early_stop: bool = True,
) -> tuple[jax.Array, jax.Array]:
  """Diverse beam search (Vijayakumar et al., 2018), Hamming diversity.

  The K beams form G groups of K / G. At each step the groups choose in turn;
  group g ranks its candidates by summed log-prob minus `diversity` times the
  number of earlier groups' beams that chose the same token at this step. The
  penalty steers only the choice of live beams: stored scores are the model's
  log-probs. Each group keeps its K / G best finished hypotheses (a caption
  that several groups finish at the same step belongs to the first of them);
  the best N of the K are returned. With one group this is
  `beam_search`.

  Args:
    step_fn, init_carry, max_len, bos_id, eos_id, pad_id, length_penalty,
      length_norm, constraints, early_stop: as in `beam_search`.
    beam_size: K, live hypotheses per image over all groups.
    num_groups: G, dividing K.
    diversity: lambda >= 0, the penalty per earlier choice of a token.
    num_return: N <= K (default K).

  Returns:
    sequences: [batch, N, T] int32 and scores: [batch, N] float32, as in
      `beam_search`; -inf where fewer than N distinct hypotheses were found.
  """
  settings = BeamSettings(
    beam_size=beam_size,
    max_len=max_len,
    bos_id=bos_id,
    eos_id=eos_id,
    pad_id=pad_id,
    length_norm=length_norm,
    num_return=num_return,
    num_groups=num_groups,
    constraints=constraints or decoding_constraints.Constraints(),
    early_stop=early_stop,
  )
  return _run(step_fn, init_carry, settings, length_penalty, diversity)


def _run(
  step_fn: decoding_step.StepFn,
  init_carry: decoding_step.Carry,
  settings: BeamSettings,
  length_penalty: jax.typing.ArrayLike,
  diversity: jax.typing.ArrayLike,
) -> tuple[jax.Array, jax.Array]:
  """Validates the settings and runs the compiled search."""
  settings.validate()
  if isinstance(diversity, (int, float)) and diversity < 0:
    raise ValueError(f'diversity must be >= 0, got {diversity}.')
  return _beam_search_jit(
    decoding_step.as_partial(step_fn),
    init_carry,
    jnp.asarray(length_penalty, jnp.float32),
    jnp.asarray(diversity, jnp.float32),
    settings,
  )


def gather_beams(x: jax.Array, beam: jax.Array) -> jax.Array:
  """x[b, beam[b, j]] for every row b and new beam j.

  Args:
    x: [batch, beam, ...].
    beam: [batch, new_beam] int32, indices into the beam dim.

  Returns:
    [batch, new_beam, ...].
  """
  index = beam.reshape(beam.shape + (1,) * (x.ndim - 2))
  return jnp.take_along_axis(x, index, axis=1)


def _merge_finished(
  fin_seqs: jax.Array,
  fin_scores: jax.Array,
  seqs: jax.Array,
  scores: jax.Array,
) -> tuple[jax.Array, jax.Array]:
  """Keeps the best of a pool and new finished candidates, per group.

  With several groups, a candidate that an earlier group also offers at this
  step is dropped (pools only ever meet equal sequences at the same step, so
  the groups' pools stay disjoint).

  Args:
    fin_seqs: [batch, groups, pool, T] int32.
    fin_scores: [batch, groups, pool] float32.
    seqs: [batch, beam, T] int32, candidates, beams grouped group-major.
    scores: [batch, beam] float32.

  Returns:
    The new pool: [batch, groups, pool, T] and [batch, groups, pool], sorted.
  """
  groups, pool = fin_scores.shape[1:]
  if groups > 1:
    scores = _drop_repeats(seqs, scores, groups)
  seqs = einops.rearrange(seqs, 'b (g k) t -> b g k t', g=groups)
  scores = einops.rearrange(scores, 'b (g k) -> b g k', g=groups)
  all_scores = jnp.concatenate([fin_scores, scores], axis=2)
  all_seqs = jnp.concatenate([fin_seqs, seqs], axis=2)
  top, index = decoding_top_k.batch_top_k(all_scores, pool)
  return jnp.take_along_axis(all_seqs, index[..., None], axis=2), top


def _drop_repeats(seqs: jax.Array, scores: jax.Array, groups: int) -> jax.Array:
  """-inf for a sequence that a valid candidate of an earlier group repeats.

  Args:
    seqs: [batch, beam, T] int32, beams grouped group-major.
    scores: [batch, beam] float32.
    groups: G.

  Returns:
    [batch, beam] float32.
  """
  beam = seqs.shape[1]
  group = jnp.arange(beam) // (beam // groups)
  earlier = group[None, :] < group[:, None]  # [i, j]: j's group before i's
  same = jnp.all(seqs[:, :, None] == seqs[:, None, :], axis=-1)
  valid = (scores > NEG_INF)[:, None, :]
  return jnp.where(jnp.any(same & earlier & valid, -1), NEG_INF, scores)


def _select_live(
  logits: jax.Array,
  lse: jax.Array,
  maxima: jax.Array | None,
  live_logp: jax.Array,
  word_bans: jax.Array | None,
  diversity: jax.Array,
  settings: BeamSettings,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Chooses the next live beams among the non-EOS extensions.

  Args:
    logits: [batch, beam, vocab] float32.
    lse: [batch, beam] float32, logsumexp of logits.
    maxima: `chunk_maxima(logits)` or None.
    live_logp: [batch, beam] float32.
    word_bans: [batch, beam, vocab] bool or None.
    diversity: [] float32, the Hamming penalty (used with several groups).
    settings: the search settings.

  Returns:
    logp: [batch, beam] float32, summed log-probs of the new beams (-inf for
    none); parent: [batch, beam] int32; token: [batch, beam] int32.
  """
  batch, beam, vocab = logits.shape
  groups, eos = settings.num_groups, settings.eos_id
  offset = live_logp - lse
  if word_bans is None and groups == 1:
    return decoding_top_k.top_k_candidates(
      logits, offset, beam, exclude=eos, maxima=maxima
    )
  scores = logits
  if word_bans is not None:
    scores = jnp.where(word_bans, NEG_INF, scores)
  if groups == 1:
    return decoding_top_k.top_k_candidates(scores, offset, beam, exclude=eos)
  per_group = beam // groups
  rows = jnp.arange(batch)[:, None]
  counts = jnp.zeros((batch, vocab), jnp.float32)
  parents, tokens = [], []
  for g in range(groups):
    beams = slice(g * per_group, (g + 1) * per_group)
    penalised = scores[:, beams] - diversity * counts[:, None, :]
    keys, parent, token = decoding_top_k.top_k_candidates(
      penalised, offset[:, beams], per_group, exclude=eos
    )
    counts = counts.at[rows, token].add(jnp.where(keys > NEG_INF, 1.0, 0.0))
    parents.append(parent + g * per_group)
    tokens.append(token)
  parent = jnp.concatenate(parents, axis=1)
  token = jnp.concatenate(tokens, axis=1)
  chosen = jnp.take_along_axis(
    scores.reshape(batch, -1), parent * vocab + token, axis=1
  )
  logp = jnp.take_along_axis(offset, parent, axis=1) + chosen
  logp = jnp.where(token == eos, NEG_INF, logp)
  return logp, parent, token


def _beam_search_impl(
  step_fn: decoding_step.StepFn,
  init_carry: decoding_step.Carry,
  length_penalty: jax.Array,
  diversity: jax.Array,
  settings: BeamSettings,
) -> tuple[jax.Array, jax.Array]:
  """The traced body of `beam_search`; see there."""
  s = settings
  batch = decoding_step.batch_size(init_carry)
  beam, groups, length = s.beam_size, s.num_groups, s.max_len
  per_group = beam // groups
  normalizer = functools.partial(
    decoding_step.length_normalizer,
    length_penalty=length_penalty,
    length_norm=s.length_norm,
  )
  first_of_group = jnp.arange(beam) % per_group == 0
  state = BeamState(
    step=jnp.zeros((), jnp.int32),
    tokens=jnp.full((batch, beam), s.bos_id, jnp.int32),
    live_seqs=jnp.full((batch, beam, length), s.pad_id, jnp.int32),
    live_logp=jnp.broadcast_to(
      jnp.where(first_of_group, 0.0, NEG_INF), (batch, beam)
    ),
    carry=decoding_step.add_beam_dim(init_carry, beam),
    fin_seqs=jnp.full(
      (batch, groups, s.pool_size, length), s.pad_id, jnp.int32
    ),
    fin_scores=jnp.full((batch, groups, s.pool_size), NEG_INF, jnp.float32),
  )

  def can_improve(state: BeamState) -> jax.Array:
    # Descendants end with `step + 1 .. max_len` tokens; their summed log-prob
    # is at most live_logp <= 0, so the largest normaliser bounds them.
    divisor = jnp.maximum(normalizer(state.step + 1), normalizer(length))
    best = einops.reduce(state.live_logp, 'b (g k) -> b g', 'max', g=groups)
    bound = best / divisor
    worst = state.fin_scores[..., -1]
    return jnp.any((bound > NEG_INF) & (bound >= worst))

  def cond(state: BeamState) -> jax.Array:
    if not s.early_stop:
      return state.step < length
    return (state.step < length) & can_improve(state)

  def body(state: BeamState) -> BeamState:
    step = state.step
    logits, carry = decoding_step.call_step(step_fn, state.tokens, state.carry)
    decoding_step.check_ids(
      logits.shape[-1], bos_id=s.bos_id, eos_id=s.eos_id, pad_id=s.pad_id
    )
    share_pass = (
      not s.constraints.bans_words
      and groups == 1
      and decoding_top_k.uses_chunks(beam, logits.shape[-1], beam)
    )
    lse, maxima = decoding_top_k.log_normalizer(logits, share_pass)
    word_bans, eos_bans = decoding_constraints.bans(
      s.constraints, state.live_seqs, step, logits.shape[-1], s.eos_id
    )
    # Every live beam offers its EOS extension to the finished pool.
    eos_logp = state.live_logp + logits[..., s.eos_id] - lse
    if eos_bans is not None:
      eos_logp = jnp.where(eos_bans, NEG_INF, eos_logp)
    eos_seqs = lax.dynamic_update_index_in_dim(
      state.live_seqs, jnp.full((batch, beam), s.eos_id, jnp.int32), step, 2
    )
    fin_seqs, fin_scores = _merge_finished(
      state.fin_seqs,
      state.fin_scores,
      eos_seqs,
      eos_logp / normalizer(step + 1),
    )
    live_logp, parent, token = _select_live(
      logits, lse, maxima, state.live_logp, word_bans, diversity, s
    )
    live_seqs = lax.dynamic_update_index_in_dim(
      gather_beams(state.live_seqs, parent), token, step, 2
    )
    return BeamState(
      step=step + 1,
      tokens=token,
      live_seqs=live_seqs,
      live_logp=live_logp,
      carry=jax.tree.map(lambda x: gather_beams(x, parent), carry),
      fin_seqs=fin_seqs,
      fin_scores=fin_scores,
    )

  state = lax.while_loop(cond, body, state)
  # Beams still live at max_len are returned cut there; after an early stop
  # none of them (nor any descendant) could enter the pool.
  cut = jnp.where(
    state.step == length, state.live_logp / normalizer(length), NEG_INF
  )
  fin_seqs, fin_scores = _merge_finished(
    state.fin_seqs, state.fin_scores, state.live_seqs, cut
  )
  seqs = einops.rearrange(fin_seqs, 'b g p t -> b (g p) t')
  scores = einops.rearrange(fin_scores, 'b g p -> b (g p)')
  if groups > 1:
    scores, index = decoding_top_k.batch_top_k(scores, s.returned)
    seqs = jnp.take_along_axis(seqs, index[..., None], axis=1)
  seqs = jnp.where(scores[..., None] > NEG_INF, seqs, s.pad_id)
  return seqs, scores


_beam_search_jit = jax.jit(_beam_search_impl, static_argnames='settings')
