"""The identity encoder: precomputed image features pass straight through."""

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Identity:
  """Features [batch, dim] or [batch, cells, dim] -> (global, grid).

  A flat vector is its own global feature and a one-cell grid; a grid's global
  feature is its mean over cells.
  """

  def init(self, rng: jax.Array, images: jax.Array) -> dict:
    del rng, images
    return {}

  def apply(self, params: dict, images: jax.Array):
    """images: [batch, dim] or [batch, cells, dim] float features."""
    del params
    features = jnp.asarray(images, jnp.float32)
    if features.ndim == 2:
      return features, features[:, None, :]
    if features.ndim == 3:
      return features.mean(axis=1), features
    raise ValueError(
        'The identity encoder takes precomputed features shaped [batch, dim] '
        f'or [batch, cells, dim]; got shape {features.shape}.'
    )
