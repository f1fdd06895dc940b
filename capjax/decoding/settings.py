"""The decoder a config names, as `decoding.decode` keyword settings."""

from collections.abc import Callable

import ml_collections

from capjax.decoding import constraints as decoding_constraints

METHODS = ('greedy', 'beam', 'sample', 'diverse_beam')


def decode_len(config: ml_collections.ConfigDict) -> int:
  """Tokens to decode: `eval.max_decode_len`, else `dataset.max_len`."""
  return config.eval.max_decode_len or config.dataset.max_len


def from_config(
    config: ml_collections.ConfigDict, word_id: Callable[[str], int]
) -> tuple[str, dict]:
  """The decoder named by `config.eval.decode` and its keyword settings.

  Args:
    config: the experiment config (its `eval` section).
    word_id: maps a word to its id (for `eval.no_end_after`).

  Returns:
    `(method, settings)` for `decoding.decode`.

  Raises:
    ValueError: an unknown `eval.decode`.
  """
  e = config.eval
  if e.decode not in METHODS:
    raise ValueError(
        f'Unknown config.eval.decode {e.decode!r}: choose one of {METHODS}.')
  constraints = decoding_constraints.Constraints(
      suppress_unk=e.suppress_unk,
      no_repeat=e.no_repeat,
      block_trigrams=e.block_trigrams,
      no_end_after=tuple(word_id(w) for w in e.no_end_after),
      min_len=e.min_len,
      no_repeat_any=e.get('no_repeat_any', False),
  )
  settings = dict(max_len=decode_len(config), constraints=constraints,
                  length_penalty=e.length_penalty, length_norm=e.length_norm)
  if e.decode == 'beam':
    settings.update(beam_size=e.beam_size)
  elif e.decode == 'diverse_beam':
    settings.update(beam_size=e.beam_size, num_groups=e.num_groups,
                    diversity=e.diversity_penalty)
  elif e.decode == 'sample':
    settings.update(temperature=e.temperature, top_k=e.top_k, top_p=e.top_p)
  return e.decode, settings
