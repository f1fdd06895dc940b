"""Captioners: the contract every one follows, and the registry by name.

Every captioner follows the contract of DESIGN.md, with the image context
split out so that it is computed once per image, before any time loop:

* `__call__(features, tokens, *, train)` -> logits [batch, time, vocab]:
  teacher forcing over the whole sequence (the input projection of every
  token in one matmul, then the cell's scan, then the output layer once).
* `prepare(features)` -> context: everything that does not change over time
  (image projections, attention keys), leaves [batch, ...].
* `init_carry(context)` -> the recurrent state at BOS, leaves [batch, ...].
* `step(carry, tokens, context)` -> (logits, carry): one step. `tokens` is
  [batch] or [batch, beam]; carry leaves carry the same leading dims; the
  context is broadcast over the beam axis, never copied.

`features` is the encoder output `(global [batch, dim], grid [batch, cells,
dim])`.
"""

from typing import Any, Protocol

import jax

from capjax.models.captioners import base
from capjax.models.captioners import image_bias
from capjax.models.captioners import mrnn
from capjax.models.captioners import show_tell
from capjax.models.captioners import soft_attention

Features = base.Features


class CaptionerModule(Protocol):
  """The contract above, as a type: every entry of `REGISTRY` builds one."""

  def __call__(self, features: Features, tokens: jax.Array, *,
               train: bool) -> jax.Array:
    """tokens [batch, time] int32 -> logits [batch, time, vocab] float32."""

  def prepare(self, features: Features) -> Any:
    """The time-invariant image context, leaves [batch, ...]."""

  def init_carry(self, context: Any) -> Any:
    """The recurrent state at BOS, leaves [batch, ...]."""

  def step(self, carry: Any, tokens: jax.Array,
           context: Any) -> tuple[jax.Array, Any]:
    """tokens [batch(, beam)] -> (logits [batch(, beam), vocab], carry)."""


# config.model.decoder -> the module class; a variant of a paper is a field of
# its class, never a copied class.
REGISTRY = {
    'show_tell': show_tell.ShowTell,
    'merge': show_tell.Merge,
    'soft_attention': soft_attention.SoftAttention,
    'image_bias': image_bias.ImageBias,  # seed 003's generator
    'mrnn': mrnn.MRNN,
}
