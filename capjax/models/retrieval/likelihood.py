"""Likelihood retrieval (m-RNN section 5): log P(sentence | image), all pairs.

Any captioner is turned into a scorer of image-sentence pairs (`adapter`):
every image is encoded once, and each pair runs the captioner's teacher-forced
forward pass on the pair's sentence with the pair's image features. For the
m-RNN whose image enters only the multimodal layer (`fast_mrnn`), everything
that depends on the sentence alone (embeddings, the recurrence and
`V_w w + V_r r + b`, [sentences, time, M]) and on the image alone (`V_I I`,
[images, M]) is computed once; a pair then costs only the multimodal
nonlinearity, the softmax layer and its normaliser.

Both run all pairs as one compiled program (`all_pairs`): the pairs are
enumerated image-major, padded to whole chunks, and `lax.map` runs one chunk
at a time with the chunk's pairs sharded over the devices of the mesh.

The m-RNN's fast path also runs packed (`compile_packed_scorer`): the real
word positions of the sentences are known when the scorer is built, so the
program scores tiles of images x real positions instead of (image,
sentence) pairs and never computes the softmax layer at padding; each
item's log probability is added to its pair's score. With captions of mean
length L padded to T this does L / T of the padded path's work.

Scores: `t2i` ranks images by log P(s | I); `i2t` by Eq. 7,
log P(s | I_q) - log mean_{I'} P(s | I') over a sample of training images
(`normalised`).
"""

from collections.abc import Callable
import math

import jax
import jax.numpy as jnp
import numpy as np

from capjax import parallel
from capjax.models import captioning
from capjax.models.captioners import mrnn as mrnn_lib

# pair_fn(image_index [P] int32, sentence_index [P] int32) -> log P [P].
PairFn = Callable[[jax.Array, jax.Array], jax.Array]
# Most real word positions per step of the packed scorer (its image block
# fills `chunk`). Measured with 16 images (2026-12-01, features setting):
# 128 takes 677 ms, 512 793 ms, 2048 938 ms; on shapes all within 10%.
POSITION_BLOCK = 128


def sentence_log_prob(logits: jax.Array, targets: jax.Array,
                      weights: jax.Array) -> jax.Array:
  """Summed natural-log probabilities of each sentence's words.

  Args:
    logits: [..., time, vocab] float.
    targets: [..., time] int32 next words.
    weights: [..., time] float, 1 for real words.

  Returns:
    [...] float32.
  """
  logits = logits.astype(jnp.float32)
  picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  log_p = picked - jax.nn.logsumexp(logits, axis=-1)
  return jnp.sum(log_p * weights, axis=-1)


def all_pairs(pair_fn: PairFn, num_images: int, num_sentences: int,
              chunk: int, mesh: jax.sharding.Mesh | None = None) -> jax.Array:
  """log P of every (image, sentence) pair, chunk by chunk (traceable).

  Args:
    pair_fn: scores a chunk of pairs given by their indices.
    num_images: N.
    num_sentences: S.
    chunk: pairs per program step (a multiple of the mesh size).
    mesh: shard each chunk's pairs over its `data` axis (None: no constraint).

  Returns:
    [N, S] float32.
  """
  total = num_images * num_sentences
  num_chunks = math.ceil(total / chunk)
  if mesh is not None and chunk % mesh.size:
    raise ValueError(f'the chunk ({chunk} pairs, config key '
                     f'eval.likelihood.chunk) must be a multiple of the '
                     f'{mesh.size} devices.')
  flat = jnp.minimum(jnp.arange(num_chunks * chunk, dtype=jnp.int32),
                     total - 1).reshape(num_chunks, chunk)

  def body(ids):
    if mesh is not None:
      ids = jax.lax.with_sharding_constraint(ids,
                                             parallel.data_sharding(mesh))
    return pair_fn(ids // num_sentences, ids % num_sentences)

  scores = jax.lax.map(body, flat)
  return scores.reshape(-1)[:total].reshape(num_images, num_sentences)


def adapter(model: captioning.Captioner, params, images: jax.Array,
            inputs: jax.Array, targets: jax.Array,
            weights: jax.Array) -> PairFn:
  """Any captioner as a pair scorer: one full decoder forward per pair.

  Args:
    model: the captioner.
    params: its parameters.
    images: [N, ...] images or features (each encoded once, here).
    inputs: [S, time] int32 decoder inputs (BOS first).
    targets: [S, time] int32 next words.
    weights: [S, time] float 1 for real words.

  Returns:
    The pair function for `all_pairs`.
  """
  features = model.encode(params, images)
  variables = {'params': params['decoder']}

  def pair_fn(image_index, sentence_index):
    pair_features = jax.tree.map(lambda f: f[image_index], features)
    logits = model.decoder.apply(variables, pair_features,
                                 inputs[sentence_index], train=False)
    return sentence_log_prob(logits, targets[sentence_index],
                             weights[sentence_index])

  return pair_fn


def naive(model: captioning.Captioner, params, images: jax.Array,
          inputs: jax.Array, targets: jax.Array,
          weights: jax.Array) -> PairFn:
  """The full forward pass per pair, image encoder included (the baseline
  of the retrieval benchmark)."""

  def pair_fn(image_index, sentence_index):
    logits, _ = model.logits(params, images[image_index],
                             inputs[sentence_index], train=False)
    return sentence_log_prob(logits, targets[sentence_index],
                             weights[sentence_index])

  return pair_fn


def supports_fast(model: captioning.Captioner) -> bool:
  """True for an m-RNN whose image enters only the multimodal layer."""
  decoder = model.decoder
  return (isinstance(decoder, mrnn_lib.MRNN)
          and not mrnn_lib.switches(decoder.variant)['image_to_recurrent'])


def fast_mrnn(model: captioning.Captioner, params, images: jax.Array,
              inputs: jax.Array, targets: jax.Array,
              weights: jax.Array) -> PairFn:
  """The m-RNN's pair scorer with the sentence-only work done once.

  Same arguments and result as `adapter`; raises ValueError for a model
  that `supports_fast` rejects.
  """
  if not supports_fast(model):
    raise ValueError('fast likelihood retrieval needs an m-RNN whose image '
                     'enters only the multimodal layer; use `adapter`.')
  variables = {'params': params['decoder']}
  decoder = model.decoder
  features = model.encode(params, images)
  image_mm = decoder.apply(variables, features, method='prepare')['image_mm']
  states = decoder.apply(variables, inputs, method='sentence_states')

  def pair_fn(image_index, sentence_index):
    a = states[sentence_index] + image_mm[image_index][:, None]
    logits = decoder.apply(variables, a, method='predict')
    return sentence_log_prob(logits, targets[sentence_index],
                             weights[sentence_index])

  return pair_fn


def pair_fn_for(model: captioning.Captioner, fast: bool = True):
  """`fast_mrnn` where the model supports it (and `fast`), else `adapter`."""
  return fast_mrnn if fast and supports_fast(model) else adapter


def compile_scorer(model: captioning.Captioner, *, num_images: int,
                   num_sentences: int, chunk: int = 4096,
                   mesh: jax.sharding.Mesh | None = None, fast: bool = True,
                   builder=None):
  """One jitted program scoring all pairs of N images and S sentences.

  Args:
    model: the captioner.
    num_images: N.
    num_sentences: S.
    chunk: pairs per program step (cut to the pairs there are).
    mesh: devices to shard the pairs over.
    fast: use the m-RNN fast path when the model allows it.
    builder: a pair-function builder (`adapter`, `fast_mrnn`, `naive`),
      overriding `fast`.

  Returns:
    `fn(params, images [N, ...], inputs [S, time], targets [S, time],
    weights [S, time]) -> [N, S] float32` natural-log probabilities.
  """
  build = builder or pair_fn_for(model, fast)
  devices = mesh.size if mesh is not None else 1
  chunk = min(_round_up(chunk, devices),
              _round_up(num_images * num_sentences, devices))

  @jax.jit
  def fn(params, images, inputs, targets, weights):
    pair_fn = build(model, params, images, inputs, targets, weights)
    return all_pairs(pair_fn, num_images, num_sentences, chunk, mesh)

  return fn


def packed_positions(
    weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The real word positions of [S, T] `weights`, for the packed scorer.

  Returns:
    (flat [R] int32 indices into the flattened [S * T] positions with a
    nonzero weight, sentence [R] int32 the sentence of each, weight [R]
    float32 its weight).
  """
  weights = np.asarray(weights, np.float32)
  flat = np.flatnonzero(weights.reshape(-1)).astype(np.int32)
  return (flat, (flat // weights.shape[1]).astype(np.int32),
          weights.reshape(-1)[flat])


def packed_blocks(num_images: int, num_positions: int, chunk: int,
                  devices: int = 1) -> tuple[tuple[int, int], tuple[int, int]]:
  """How `compile_packed_scorer` tiles N images x R real positions.

  Returns:
    ((image block, image blocks), (position block, position blocks)): the
    position block is at most `POSITION_BLOCK`, a multiple of 8, as even as
    the count allows (little padding); the image block is about
    chunk / position block, a multiple of `devices`. The program computes
    image blocks x image block x position blocks x position block items, of
    which N x R are real.
  """
  positions = max(num_positions, 1)
  block_p = _round_up(math.ceil(positions / math.ceil(
      positions / POSITION_BLOCK)), 8)
  block_i = min(_round_up(max(chunk // block_p, 1), devices),
                _round_up(num_images, devices))
  return ((block_i, math.ceil(num_images / block_i)),
          (block_p, math.ceil(positions / block_p)))


def compile_packed_scorer(model: captioning.Captioner, weights: np.ndarray, *,
                          num_images: int, chunk: int = 65536,
                          mesh: jax.sharding.Mesh | None = None):
  """The m-RNN fast path over real word positions only (module docstring).

  Each program step takes a block of images and a block of real positions
  and scores all their (image, position) items: the multimodal
  pre-activation is the broadcast sum `V_I I [images, 1, M] + sentence
  terms [1, positions, M]`, which XLA fuses with the nonlinearity, so no
  per-item copy of either [M] vector is gathered (the earlier item-by-item
  enumeration gathered two and was bound by that memory traffic).

  Args:
    model: an m-RNN that `supports_fast`.
    weights: [S, T] host weights of the sentences that will be scored (1 for
      real words); they fix the program's shape.
    num_images: N.
    chunk: about how many (image, word position) items one step scores;
      the image block is a multiple of the mesh size.
    mesh: devices to split each step's image block over.

  Returns:
    `fn(params, images [N, ...], inputs [S, T], targets [S, T]) -> [N, S]`
    float32 natural-log probabilities, equal to `compile_scorer`'s.
  """
  if not supports_fast(model):
    raise ValueError('the packed scorer needs an m-RNN whose image enters '
                     'only the multimodal layer; use compile_scorer.')
  flat, sentence, weight = packed_positions(weights)
  num_sentences = weights.shape[0]
  (block_i, image_blocks), (block_p, position_blocks) = packed_blocks(
      num_images, len(flat), chunk, mesh.size if mesh is not None else 1)
  pad = position_blocks * block_p - len(flat)
  # Padding positions: position 0 of sentence 0 with weight 0 (adds 0).
  flat, sentence = np.pad(flat, (0, pad)), np.pad(sentence, (0, pad))
  weight = np.pad(weight, (0, pad))
  steps = np.stack(np.meshgrid(np.arange(image_blocks),
                               np.arange(position_blocks), indexing='ij'),
                   -1).reshape(-1, 2).astype(np.int32)
  decoder = model.decoder

  @jax.jit
  def fn(params, images, inputs, targets):
    variables = {'params': params['decoder']}
    features = model.encode(params, images)
    image_mm = decoder.apply(variables, features,
                             method='prepare')['image_mm']
    image_mm = jnp.pad(image_mm, ((0, image_blocks * block_i - num_images),
                                  (0, 0)))
    states = decoder.apply(variables, inputs, method='sentence_states')
    states = states.reshape(-1, states.shape[-1])[flat]  # [R, M]
    words = targets.reshape(-1)[flat]  # [R]
    of_sentence, weights_r = jnp.asarray(sentence), jnp.asarray(weight)

    def body(scores, step):
      first_image, first_position = step[0] * block_i, step[1] * block_p
      block = lambda x, first, size: jax.lax.dynamic_slice_in_dim(
          x, first, size)
      image_block = block(image_mm, first_image, block_i)  # [Bi, M]
      if mesh is not None:
        image_block = jax.lax.with_sharding_constraint(
            image_block, parallel.data_sharding(mesh))
      pre = image_block[:, None] + block(states, first_position, block_p)
      logits = decoder.apply(variables, pre.reshape(-1, pre.shape[-1]),
                             method='predict').astype(jnp.float32)
      logits = logits.reshape(block_i, block_p, -1)
      word = block(words, first_position, block_p)
      picked = jnp.take_along_axis(logits, word[None, :, None], axis=-1)
      image = first_image + jnp.arange(block_i)
      real = jnp.where(image < num_images, 1.0, 0.0)
      log_p = (picked[..., 0] - jax.nn.logsumexp(logits, axis=-1)) * (
          real[:, None] * block(weights_r, first_position, block_p)[None])
      pair = (jnp.minimum(image, num_images - 1)[:, None] * num_sentences
              + block(of_sentence, first_position, block_p)[None])
      return scores.at[pair].add(log_p), None

    scores, _ = jax.lax.scan(
        body, jnp.zeros(num_images * num_sentences, jnp.float32),
        jnp.asarray(steps))
    return scores.reshape(num_images, num_sentences)

  return fn


def score(model: captioning.Captioner, params, images, inputs, targets,
          weights, **kwargs) -> np.ndarray:
  """`compile_scorer(...)` run once: [N, S] float32 log P(s | I)."""
  fn = compile_scorer(model, num_images=images.shape[0],
                      num_sentences=inputs.shape[0], **kwargs)
  return np.asarray(fn(params, images, inputs, targets, weights))


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def log_prior(prior_scores: np.ndarray) -> np.ndarray:
  """log P(s) of Eq. 7: log of the mean of P(s | I') over images I'.

  Args:
    prior_scores: [num_prior_images, S] log P(s | I').

  Returns:
    [S] float64.
  """
  prior_scores = np.asarray(prior_scores, np.float64)
  top = prior_scores.max(axis=0)
  return top + np.log(np.mean(np.exp(prior_scores - top), axis=0))


def normalised(scores: np.ndarray, prior_scores: np.ndarray) -> np.ndarray:
  """Eq. 7: log P(s | I_q) - log P(s), [N, S] from [N, S] and [N', S]."""
  return np.asarray(scores, np.float64) - log_prior(prior_scores)[None]
