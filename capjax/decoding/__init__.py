"""Every decoder over a model's step function, chosen by name: greedy, beam...

The decoders live in `decoding.beam` (beam and diverse beam search) and
`decoding.sampling` (greedy, the argmax caption, and sampling); this module
names them for configs and callers:

  sequences, scores = decoding.decode(
      step_fn, init_carry, method='beam', beam_size=3, max_len=20)

Each runs one `lax.while_loop` over a model-free `decoding_step.StepFn`: no
host round trip per step, one compilation per (batch, beam, max_len,
settings). The hypotheses of image b stay in row b of every array and are
reordered only along the beam axis, so a step function may close over
per-image context `[batch, ...]` and broadcast it against its
`[batch, beam, ...]` carry.
"""

from typing import Any

import jax

from capjax.decoding import beam as decoding_beam
from capjax.decoding import constraints as decoding_constraints
from capjax.decoding import sampling as decoding_sampling
from capjax.decoding import settings as decoding_settings
from capjax.decoding import step as decoding_step

METHODS = decoding_settings.METHODS

StepFn = decoding_step.StepFn
Constraints = decoding_constraints.Constraints
greedy = decoding_sampling.greedy
beam_search = decoding_beam.beam_search
diverse_beam_search = decoding_beam.diverse_beam_search
sample = decoding_sampling.sample
length_normalizer = decoding_step.length_normalizer
from_config = decoding_settings.from_config
decode_len = decoding_settings.decode_len


def decode(
  step_fn: decoding_step.StepFn,
  init_carry: decoding_step.Carry,
  *,
  method: str,
  rng: jax.Array | None = None,
  **settings: Any,
) -> tuple[jax.Array, jax.Array]:
  """Runs the decoder named `method`, so a config can choose it by name.

  Args:
    step_fn: the model's `StepFn`.
    init_carry: pytree of leaves [batch, ...], the state at BOS.
    method: 'greedy', 'beam', 'sample' or 'diverse_beam'.
    rng: a `jax.random.key`; required by 'sample', refused by the others.
    **settings: keyword settings of that decoder (`greedy`, `beam_search`,
      `sample`, `diverse_beam_search`): max_len, beam_size, temperature...
      A `constraints` mapping is turned into `Constraints`.

  Returns:
    sequences: [batch, N, max_len] int32, scores: [batch, N] float32, where
    N is 1 (greedy), num_return (default beam_size) or num_samples.
  """
  if method not in METHODS:
    raise ValueError(f'decode method must be one of {METHODS}, got {method!r}.')
  if (rng is None) == (method == 'sample'):
    raise ValueError(
      f"decode(method={method!r}): pass rng exactly when method='sample'."
    )
  constraints = settings.get('constraints')
  if constraints is not None and not isinstance(constraints, Constraints):
    settings['constraints'] = Constraints(**dict(constraints))
  try:
    if method == 'greedy':
      return greedy(step_fn, init_carry, **settings)
    if method == 'beam':
      return beam_search(step_fn, init_carry, **settings)
    if method == 'diverse_beam':
      return diverse_beam_search(step_fn, init_carry, **settings)
    return sample(step_fn, init_carry, rng, **settings)
  except TypeError as error:
    if 'keyword argument' not in str(error):
      raise
    raise TypeError(f'decode(method={method!r}): {error}') from error
