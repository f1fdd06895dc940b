"""Decoding constraints: rules that ban next tokens, as masks on the logits."""

import dataclasses

import jax
from jax import numpy as jnp

UNK_ID = 3


@dataclasses.dataclass(frozen=True)
class Constraints:
  """Which rules restrict the next token; every rule is off by default.

  A ban sets a token's logit to -inf before the decoder chooses (see `bans`
  for the one exception, a hypothesis with no token left): beam search
  and greedy mask the model's log-probabilities (the scores stay the model's
  own log-probabilities, not renormalised), sampling masks the logits before
  its softmax (the draw is renormalised over the allowed tokens). Hashable, so
  it can be a static argument of a jitted decoder.

  Attributes:
    suppress_unk: never emit `unk_id`.
    unk_id: the id of the unknown word.
    banned_ids: further ids never emitted (PAD and BOS, say); not EOS.
    no_repeat: never emit the token just emitted.
    no_repeat_any: never emit a token already emitted (a set of tags: no
      tag twice; EOS still ends the sequence).
    block_trigrams: never complete a trigram of words that is already in
      the caption.
    no_end_after: ids after which EOS is banned: a caption may not end on one
      of these words ("a", "the", "of", ...).
    min_len: EOS is banned until the caption has at least this many words
      (tokens before EOS).
  """

  suppress_unk: bool = False
  unk_id: int = UNK_ID
  banned_ids: tuple[int, ...] = ()
  no_repeat: bool = False
  no_repeat_any: bool = False
  block_trigrams: bool = False
  no_end_after: tuple[int, ...] = ()
  min_len: int = 0

  def __post_init__(self):
    # Lists (from a config) become tuples, so the settings stay hashable.
    object.__setattr__(self, 'banned_ids', tuple(self.banned_ids))
    object.__setattr__(self, 'no_end_after', tuple(self.no_end_after))

  @property
  def bans_words(self) -> bool:
    """Whether any rule can ban a word (a token other than EOS)."""
    return (
      self.suppress_unk
      or bool(self.banned_ids)
      or self.no_repeat
      or self.no_repeat_any
      or self.block_trigrams
    )

  @property
  def bans_eos(self) -> bool:
    """Whether any rule can ban EOS."""
    return bool(self.no_end_after) or self.min_len > 0

  def validate(self, eos_id: int) -> None:
    """Raises ValueError on settings that cannot be met."""
    if eos_id in self.banned_ids:
      raise ValueError(
        f'Constraints.banned_ids contains EOS ({eos_id}); to stop captions '
        'from ending early use min_len instead.'
      )
    if self.suppress_unk and self.unk_id == eos_id:
      raise ValueError(
        f'Constraints.unk_id equals EOS ({eos_id}); set unk_id to the '
        "vocabulary's UNK id."
      )
    if self.min_len < 0:
      raise ValueError(f'Constraints.min_len must be >= 0, got {self.min_len}.')


def bans(
  constraints: Constraints,
  seqs: jax.Array,
  step: jax.Array,
  vocab_size: int,
  eos_id: int,
) -> tuple[jax.Array | None, jax.Array | None]:
  """Which next tokens the rules ban, for each hypothesis.

  When the rules ban every word of a hypothesis and EOS too, EOS is allowed
  after all: the caption ends rather than break a word rule (no decoder is
  ever left without a token).

  Args:
    constraints: the rules.
    seqs: [batch, beam, max_len] int32, tokens emitted so far (no BOS); only
      positions before `step` are read.
    step: [] int32, the number of tokens emitted so far.
    vocab_size: V.
    eos_id: the end token.

  Returns:
    word_bans: [batch, beam, vocab] bool, True where a word is banned (never
      at EOS), or None when no rule bans words.
    eos_bans: [batch, beam] bool, True where EOS is banned, or None when no
      rule bans EOS.
  """
  words = _word_bans(constraints, seqs, step, vocab_size)
  is_eos = jnp.arange(vocab_size) == eos_id
  if words is not None:
    words &= ~is_eos
  eos = _eos_bans(constraints, seqs, step)
  if words is not None and eos is not None:
    eos &= ~jnp.all(words | is_eos, axis=-1)
  return words, eos


def _word_bans(
  constraints: Constraints,
  seqs: jax.Array,
  step: jax.Array,
  vocab_size: int,
) -> jax.Array | None:
  """[batch, beam, vocab] bool: the words the rules ban, or None."""
  if not constraints.bans_words:
    return None
  batch, beam, max_len = seqs.shape
  vocab = jnp.arange(vocab_size, dtype=jnp.int32)
  banned = jnp.zeros((batch, beam, vocab_size), dtype=bool)
  always = list(constraints.banned_ids)
  if constraints.suppress_unk:
    always.append(constraints.unk_id)
  if always:
    banned |= jnp.isin(vocab, jnp.asarray(always, dtype=jnp.int32))
  prev1 = _token_at(seqs, step - 1)
  if constraints.no_repeat:
    banned |= (vocab == prev1[..., None]) & (step >= 1)
  rows = jnp.arange(batch)[:, None, None]
  beams = jnp.arange(beam)[None, :, None]
  if constraints.no_repeat_any:
    emitted = jnp.arange(max_len) < step
    seen = jnp.zeros((batch, beam, vocab_size), dtype=jnp.int32)
    seen = seen.at[rows, beams, seqs].add(emitted.astype(jnp.int32))
    banned |= seen > 0
  if constraints.block_trigrams and max_len >= 3:
    prev2 = _token_at(seqs, step - 2)
    # A trigram (w_j, w_j+1, w_j+2) already in the caption, with j <= step - 3,
    # whose first two words are the last two emitted bans w_j+2.
    starts = jnp.arange(max_len - 2)
    match = (
      (seqs[..., :-2] == prev2[..., None])
      & (seqs[..., 1:-1] == prev1[..., None])
      & (starts <= step - 3)
    )
    hits = jnp.zeros((batch, beam, vocab_size), dtype=jnp.int32)
    hits = hits.at[rows, beams, seqs[..., 2:]].add(match.astype(jnp.int32))
    banned |= hits > 0
  return banned


def _eos_bans(
  constraints: Constraints, seqs: jax.Array, step: jax.Array
) -> jax.Array | None:
  """[batch, beam] bool: where the rules ban EOS, or None."""
  if not constraints.bans_eos:
    return None
  banned = jnp.broadcast_to(step < constraints.min_len, seqs.shape[:2])
  if constraints.no_end_after:
    prev1 = _token_at(seqs, step - 1)
    ends = jnp.asarray(constraints.no_end_after, dtype=jnp.int32)
    banned = banned | (jnp.isin(prev1, ends) & (step >= 1))
  return banned


def _token_at(seqs: jax.Array, position: jax.Array) -> jax.Array:
  """seqs[:, :, position] for a traced position (clipped to 0 when negative).

  Args:
    seqs: [batch, beam, max_len] int32.
    position: [] int32.

  Returns:
    [batch, beam] int32.
  """
  index = jnp.maximum(position, 0)
  return jax.lax.dynamic_index_in_dim(seqs, index, axis=2, keepdims=False)
