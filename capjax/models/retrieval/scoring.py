"""All-pairs scoring of embedded images and texts, compiled once per shape.

The embeddings of each side are computed once; every pair is then scored by
the model's `similarity` alone:

* common space: one matmul `[K, D] @ [D, L]`, with the image rows sharded
  over the devices of a mesh when one is given;
* alignment: `S_kl = sum_t max_i v_i . s_t` needs a [chunk, L, T, R] block
  per chunk of images, so one jitted `lax.map` runs over fixed-size chunks
  (the images padded to a whole number of chunks) and memory stays bounded.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from capjax import parallel


def _pad_rows(x: np.ndarray, multiple: int) -> np.ndarray:
  extra = -len(x) % multiple
  if not extra:
    return x
  return np.concatenate([x, np.zeros((extra,) + x.shape[1:], x.dtype)])


@functools.partial(jax.jit, static_argnums=(0, 3))
def chunked_scores(similarity, images, texts, chunk: int) -> jax.Array:
  """similarity(images, texts) chunk by chunk of images in one program.

  Args:
    similarity: the pairwise similarity (static).
    images: [K, ...] embeddings, K a multiple of chunk.
    texts: [L, ...] embeddings.
    chunk: images per step.

  Returns:
    [K, L] scores.
  """
  blocks = images.reshape((-1, chunk) + images.shape[1:])
  scores = jax.lax.map(lambda block: similarity(block, texts), blocks)
  return scores.reshape((-1, texts.shape[0]))


@functools.lru_cache(maxsize=16)
def _matmul_scores(similarity, mesh):
  """The jitted all-pairs similarity, image rows sharded over `mesh`."""
  if mesh is None:
    return jax.jit(similarity)
  return jax.jit(similarity,
                 in_shardings=(parallel.data_sharding(mesh),
                               parallel.replicated_sharding(mesh)),
                 out_shardings=parallel.data_sharding(mesh))


def pairwise_scores(model, images: np.ndarray, texts: np.ndarray, *,
                    chunk: int = 0,
                    mesh: jax.sharding.Mesh | None = None) -> np.ndarray:
  """Scores every image against every text.

  Args:
    model: an embedding model (`similarity`).
    images: [K, ...] image embeddings.
    texts: [L, ...] text embeddings.
    chunk: images per step of the chunked program (0: all at once, one
      matmul, sharded over `mesh`).
    mesh: devices for the sharded matmul (None: the default device).

  Returns:
    [K, L] float32 scores.
  """
  count = len(images)
  if chunk:
    padded = _pad_rows(np.asarray(images), chunk)
    scores = chunked_scores(model.similarity, jnp.asarray(padded),
                             jnp.asarray(texts), chunk)
    return np.asarray(scores)[:count]
  if mesh is None:
    return np.asarray(_matmul_scores(model.similarity, None)(images, texts))
  padded = _pad_rows(np.asarray(images), mesh.size)
  scores = _matmul_scores(model.similarity, mesh)(padded, texts)
  return parallel.to_host(scores)[:count]
