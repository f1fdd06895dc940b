"""Stories from a trained character LM: priming, sampling, bits per char.

`StoryWriter` compiles, once per (batch, seed length), one function that
primes the model with every seed text in a single masked scan
(`CharLM.prime`) and then draws `length` characters per story through
`capjax.decoding` (sampling with temperature / top-k / top-p, or greedy),
all stories of a batch at once. The decoders feed BOS first; the step
function answers that first call with the primed logits, so the first drawn
character already follows the seed. EOS, PAD, BOS and UNK are banned: a
story is exactly `length` characters.

`bits_per_char` scores held-out text with the state carried across windows;
`load_workdir` rebuilds a story model from a checkpoint.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from capjax import checkpointing
from capjax import decoding
from capjax import losses
from capjax.data import text_corpus
from capjax.data import vocab as vocab_lib
from capjax.models import char_lm
from capjax.tasks import language_model

DEFAULT_SEED = '\n'


def _constraints(length: int) -> decoding.Constraints:
  return decoding.Constraints(
      suppress_unk=True, unk_id=vocab_lib.UNK_ID,
      banned_ids=(vocab_lib.PAD_ID, vocab_lib.BOS_ID), min_len=length)


def primed_step_fn(model: char_lm.CharLM, params, carry, logits):
  """A decoding step function that starts after primed seeds.

  Args:
    model: the LM.
    params: its parameters.
    carry: the state after each seed (leaves [batch, hidden]).
    logits: [batch, V], the primed logits of the next character.

  Returns:
    (step_fn, init_carry) for `capjax.decoding`: the first call returns
    `logits` whatever token it is given and leaves the state as primed.
  """
  init = {'state': carry, 'pending': logits,
          'first': jnp.ones(logits.shape[:1], bool)}

  def step_fn(tokens, step_carry):
    new_logits, state = model.apply(
        {'params': params}, step_carry['state'], tokens, method='step')
    first = step_carry['first']
    new_logits = jnp.where(first[..., None], step_carry['pending'], new_logits)
    state = jax.tree.map(lambda new, old: jnp.where(first[..., None], old, new),
                         state, step_carry['state'])
    return new_logits, {'state': state, 'pending': step_carry['pending'],
                        'first': jnp.zeros_like(first)}

  return step_fn, init


class StoryWriter:
  """Batched story generation, compiled once per (batch, seed length)."""

  def __init__(self, model: char_lm.CharLM, chars: vocab_lib.Vocab, *,
               length: int, max_seed_len: int = 64, top_k: int = 0,
               top_p: float = 1.0):
    """Sets the static settings.

    Args:
      model: the LM.
      chars: its character vocabulary.
      length: characters per story.
      max_seed_len: seeds keep their last this many characters.
      top_k: sample from the k most probable characters (0 = all).
      top_p: nucleus mass (1 = all).
    """
    if length < 1:
      raise ValueError(f'Story length must be >= 1, got {length}.')
    self.model = model
    self.chars = chars
    self.length = length
    self.max_seed_len = max_seed_len
    self.top_k = top_k
    self.top_p = top_p
    self._generate = jax.jit(self.generate, static_argnames='greedy')

  def generate(self, params, seeds: jax.Array, lengths: jax.Array,
               rng: jax.Array, temperature: jax.Array, greedy: bool = False):
    """The pure (traceable) generation; `generate_ids` is it jitted.

    Args:
      params: the LM's parameters.
      seeds: [batch, max_seed_len] int32 seed ids (`encode_seeds`).
      lengths: [batch] int32 seed lengths.
      rng: a `jax.random.key` (sampling only).
      temperature: [] float32 (sampling only).
      greedy: decode greedily instead of sampling.

    Returns:
      [batch, length] int32 character ids.
    """
    carry, logits = self.model.apply(
        {'params': params}, seeds, lengths, method='prime')
    step_fn, init = primed_step_fn(self.model, params, carry, logits)
    if greedy:
      seqs, _ = decoding.greedy(step_fn, init, max_len=self.length,
                                constraints=_constraints(self.length))
    else:
      seqs, _ = decoding.sample(
          step_fn, init, rng, max_len=self.length, temperature=temperature,
          top_k=self.top_k, top_p=self.top_p,
          constraints=_constraints(self.length))
    return seqs[:, 0]

  def encode_seeds(self, seeds: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Seeds -> ([batch, max_seed_len] int32 ids, [batch] int32 lengths)."""
    ids = np.zeros((len(seeds), self.max_seed_len), np.int32)
    lengths = np.zeros(len(seeds), np.int32)
    for i, seed in enumerate(seeds):
      seed = (seed or DEFAULT_SEED)[-self.max_seed_len:]
      ids[i, :len(seed)] = text_corpus.encode(seed, self.chars)
      lengths[i] = len(seed)
    return ids, lengths

  def generate_ids(self, params, seeds: list[str], rng: jax.Array, *,
                   temperature: float = 1.0, greedy: bool = False):
    """[batch, length] int32 character ids following each seed."""
    ids, lengths = self.encode_seeds(seeds)
    return self._generate(params, jnp.asarray(ids), jnp.asarray(lengths), rng,
                          jnp.float32(temperature), greedy=greedy)

  def write(self, params, seeds: list[str], rng: jax.Array, *,
            temperature: float = 1.0, greedy: bool = False) -> list[str]:
    """One story per seed: the `length` characters that follow it."""
    ids = jax.device_get(self.generate_ids(
        params, seeds, rng, temperature=temperature, greedy=greedy))
    return [text_corpus.decode(row, self.chars) for row in ids]


@functools.partial(jax.jit, static_argnums=0)
def _score_window(model, params, state, inputs, targets, weights):
  logits, state = model.apply({'params': params}, inputs, state)
  nll, count = losses.cross_entropy(logits, targets, weights)
  return state, nll, count


def predicted_chars(num_chars: int, streams: int = 8) -> int:
  """How many characters `bits_per_char` predicts of `num_chars`."""
  return streams * max(num_chars // streams - 1, 0)


def bits_per_char(model: char_lm.CharLM, params, ids: np.ndarray, *,
                  streams: int = 8, window: int = 200,
                  progress=None) -> float:
  """Held-out bits per character, the state carried across windows.

  The text is cut into `streams` contiguous pieces scored side by side;
  each piece starts from the zero state and its first character is context
  only.

  Args:
    model: the LM.
    params: its parameters.
    ids: [num_chars] int32 held-out character ids.
    streams: pieces scored in parallel.
    window: characters per compiled call.
    progress: told the characters predicted by each window (optional, a
      `capjax.progress.Progress` of `predicted_chars(...)` characters).

  Returns:
    Mean -log2 p(next char) over the predicted characters.
  """
  length = len(ids) // streams
  if length < 2:
    raise ValueError(f'{len(ids)} held-out characters are too few for '
                     f'{streams} streams.')
  text = np.asarray(ids[:streams * length]).reshape(streams, length)
  state = language_model.initial_state(model, params, streams)
  nll_total = count_total = 0.0
  for start in range(0, length - 1, window):
    stop = min(start + window, length - 1)
    inputs = np.zeros((streams, window), np.int32)
    targets = np.zeros((streams, window), np.int32)
    weights = np.zeros((streams, window), np.float32)
    inputs[:, :stop - start] = text[:, start:stop]
    targets[:, :stop - start] = text[:, start + 1:stop + 1]
    weights[:, :stop - start] = 1.0
    # The padded tail of the last window runs after the real text: its
    # state is never used again.
    state, nll, count = _score_window(model, params, state, inputs, targets,
                                      weights)
    nll_total += float(nll)
    count_total += float(count)
    if progress is not None:
      progress.update(streams * (stop - start))
  return nll_total / count_total / math.log(2)


def load_workdir(workdir: str, which: str = 'latest',
                 flag: str = '--checkpoint'):
  """(config, chars, model, params) of a story model's checkpoint.

  `which` is 'latest' or 'best'; `flag` is the command's flag choosing it
  (see `checkpointing.restore_trained`).

  The checkpoint's meta item carries the characters' vocabulary.

  Raises:
    FileNotFoundError: no checkpoint (named).
    ValueError: the workdir holds another task's model.
  """
  config, meta, params, _ = checkpointing.restore_trained(
      workdir, which, flag)
  task = config.get('task', 'captioning')
  if task != 'language_model':
    raise ValueError(f'{workdir} holds a {task!r} model, not a story model '
                     '(config.task language_model).')
  chars = language_model.vocab_of(meta)
  return config, chars, language_model.create_model(config, meta), params
