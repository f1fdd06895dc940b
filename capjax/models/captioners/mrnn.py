"""The m-RNN captioner (Mao et al., ICLR 2015) and its ablations, one module.

Per time step (section 3.2, Fig. 2): word embedding I (a lookup, `embed_dim`)
and II (a ReLU layer, `hidden_dim`) give w(t); the recurrent layer
`r(t) = ReLU(U_r r(t-1) + w(t))` (`cells.ReLUCell`, fused); the multimodal
layer `m(t) = g2(V_w w(t) + V_r r(t) + V_I I)` (`multimodal_dim`) with
`g2(x) = 1.7159 tanh(2x / 3)`; a softmax over the vocabulary. `V_I I` is
image context, computed once per image.

The variants of Table 9 / Fig. 5, Table 1 and section 8 are values of
`variant` (see `VARIANTS`); what each one changes, as implemented:
* `NoEmbInput`: no `V_w w(t)` term in the multimodal layer.
* `OneLayerEmb`: one `hidden_dim` lookup replaces embeddings I and II.
* `EmbOneInput`: the multimodal layer reads embedding I, not II.
* `VisualInRnn`: the image enters embedding layer II (added before its ReLU,
  every step), so it reaches the recurrence; not the multimodal layer.
* `VisualInRnn-both`: into both, through two matrices V_I^(1), V_I^(2).
* `VisualInRnn-both-shared`: into both through ONE matrix: the image
  projection [multimodal_dim] goes to the multimodal layer and its first
  `hidden_dim` components to embedding II (the paper's Fig. 5 is not in our
  text; sizes differ, so this slice is our reading of "shared").
* `RNN-Base`: no image at all (Table 1's language-model baseline).
* `mrnn-shared`: transposed weight sharing (section 8, after Mao et al.
  2015): an intermediate layer of `embed_dim` units (g2) after the
  multimodal layer, multiplied by the transposed embedding-I matrix, plus a
  bias, gives the logits.
The L2 term of Eq. 6 is the optimizer's `optimizer.l2` (see
`capjax/optimizers.py`).

`dtype` (model.dtype) is the compute dtype of the dense layers (bfloat16
inputs, float32 accumulation and outputs, `capjax.models.precision`); the
256-unit ReLU recurrence stays float32: it is a small share of the work and
its unbounded state is where rounding would accumulate.
"""

import functools

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models import cells
from capjax.models import precision
from capjax.models.captioners import base

# variant -> the structural switches it sets (defaults: the full m-RNN).
VARIANTS = {
    'mrnn': {},
    'NoEmbInput': {'word_to_multimodal': 'none'},
    'OneLayerEmb': {'two_layer_embedding': False},
    'EmbOneInput': {'word_to_multimodal': 'embed1'},
    'VisualInRnn': {'image_to_multimodal': False, 'image_to_recurrent': True},
    'VisualInRnn-both': {'image_to_recurrent': True},
    'VisualInRnn-both-shared': {'image_to_recurrent': True,
                                'share_image': True},
    'RNN-Base': {'image_to_multimodal': False},
    'mrnn-shared': {'transposed_output': True},
}
_DEFAULT_SWITCHES = {
    'two_layer_embedding': True,  # embeddings I and II (else one lookup)
    'word_to_multimodal': 'embed2',  # embed2 | embed1 | none
    'image_to_multimodal': True,  # V_I I in the multimodal layer
    'image_to_recurrent': False,  # the image added into embedding II
    'share_image': False,  # one image matrix for both entries
    'transposed_output': False,  # logits through embedding I transposed
}


def scaled_tanh(x: jax.Array) -> jax.Array:
  """g2 of Eq. 4: 1.7159 tanh(2x / 3)."""
  return 1.7159 * jnp.tanh(x * (2.0 / 3.0))


def switches(variant: str) -> dict:
  """The structural switches of a variant name (one-line error if unknown)."""
  if variant not in VARIANTS:
    raise ValueError(
        f'Unknown m-RNN variant {variant!r}: choose one of '
        f'{sorted(VARIANTS)} (config key model.mrnn.variant).'
    )
  return {**_DEFAULT_SWITCHES, **VARIANTS[variant]}


class MRNN(nn.Module):
  """The m-RNN; `variant` picks an ablation (module docstring)."""

  WORD_EMBEDDING = 'embed1'  # embedding I, the word lookup (embedding_init)

  vocab_size: int
  embed_dim: int = 128  # word embedding I (and the shared output layer)
  hidden_dim: int = 256  # word embedding II and the recurrent layer
  multimodal_dim: int = 512  # the multimodal layer
  variant: str = 'mrnn'
  dropout: float = 0.0  # on the multimodal layer's output
  fused: bool = True
  unroll: int = 1
  dtype: str = 'float32'  # dense layers' compute dtype (model.dtype)

  def setup(self):
    s = self.switch
    dense = functools.partial(precision.dense, dtype=self.dtype)
    if s['two_layer_embedding']:
      self.embed1 = nn.Embed(self.vocab_size, self.embed_dim)
      self.embed2 = dense(self.hidden_dim)
    else:
      self.embed1 = nn.Embed(self.vocab_size, self.hidden_dim)
    self.rnn = cells.ReLUCell(
        self.hidden_dim, fused=self.fused, unroll=self.unroll,
        project_input=False,
    )
    if s['word_to_multimodal'] != 'none':
      self.mm_word = dense(self.multimodal_dim, use_bias=False)
    self.mm_rnn = dense(self.multimodal_dim)  # carries the layer's bias
    if s['image_to_multimodal'] or s['share_image']:
      self.mm_image = dense(self.multimodal_dim, use_bias=False)
    if s['image_to_recurrent'] and not s['share_image']:
      self.rnn_image = dense(self.hidden_dim, use_bias=False)
    if s['share_image'] and self.hidden_dim > self.multimodal_dim:
      raise ValueError('VisualInRnn-both-shared needs model.hidden_dim <= '
                       'model.multimodal_dim.')
    self.drop = nn.Dropout(self.dropout)
    if s['transposed_output']:
      if not s['two_layer_embedding']:
        raise ValueError('mrnn-shared needs the two-layer embedding.')
      self.intermediate = dense(self.embed_dim)
      self.output_bias = self.param(
          'output_bias', nn.initializers.zeros, (self.vocab_size,))
    else:
      self.output = dense(self.vocab_size)

  @property
  def switch(self) -> dict:
    return switches(self.variant)

  # -------------------------------------------------------- the pieces ---

  def _words(self, tokens: jax.Array, image_rnn):
    """tokens [...] -> (w(t) [..., hidden], multimodal word input)."""
    e1 = self.embed1(tokens)
    if not self.switch['two_layer_embedding']:
      w = e1 if image_rnn is None else e1 + image_rnn
      return w, w
    pre = base.rows(self.embed2, e1)
    if image_rnn is not None:
      pre = pre + image_rnn
    w = nn.relu(pre)
    return w, (e1 if self.switch['word_to_multimodal'] == 'embed1' else w)

  def sentence_terms(self, w_mm: jax.Array, r: jax.Array) -> jax.Array:
    """`V_w w + V_r r + b`: the sentence-only part of the multimodal layer.

    Args:
      w_mm: [..., E or hidden] the multimodal layer's word input.
      r: [..., hidden] recurrent states.

    Returns:
      [..., multimodal] float32.
    """
    a = base.rows(self.mm_rnn, r)
    if self.switch['word_to_multimodal'] != 'none':
      a = a + base.rows(self.mm_word, w_mm)
    return a

  def predict(self, a: jax.Array, *, train: bool = False) -> jax.Array:
    """Multimodal pre-activation [..., M] -> logits [..., vocab]."""
    m = self.drop(scaled_tanh(a), deterministic=not train)
    if self.switch['transposed_output']:
      hidden = scaled_tanh(base.rows(self.intermediate, m))
      return precision.matmul_nt(hidden, self.embed1.embedding,
                                 precision.compute_dtype(self.dtype)
                                 ) + self.output_bias
    return base.rows(self.output, m)

  def prepare(self, features: base.Features) -> dict:
    """Image context: 'image_mm' [batch, M] and 'image_rnn' [batch, hidden]
    (zeros where the variant has no such entry)."""
    image = features[0]
    s = self.switch
    batch = image.shape[:1]
    has_proj = s['image_to_multimodal'] or s['share_image']
    proj = self.mm_image(image) if has_proj else None
    if s['image_to_multimodal']:
      image_mm = proj
    else:
      image_mm = jnp.zeros(batch + (self.multimodal_dim,), jnp.float32)
    if not s['image_to_recurrent']:
      image_rnn = jnp.zeros(batch + (self.hidden_dim,), jnp.float32)
    elif s['share_image']:
      image_rnn = proj[..., :self.hidden_dim]
    else:
      image_rnn = self.rnn_image(image)
    return {'image_mm': image_mm, 'image_rnn': image_rnn}

  def refined_image(self, features: base.Features) -> jax.Array:
    """I_r = g2(V_I I) [batch, M], the refined feature of section 8.1."""
    return scaled_tanh(self.mm_image(features[0]))

  # ------------------------------------------------------ the contract ---

  def __call__(
      self,
      features: base.Features,
      tokens: jax.Array,
      *,
      train: bool,
      captions_per_image: int = 1,
  ):
    """tokens: [images * R, time] int32 -> logits [images * R, time, vocab].

    R = captions_per_image; the captions of an image are consecutive rows.
    """
    context = jax.tree.map(
        lambda x: jnp.repeat(x, captions_per_image, axis=0),
        self.prepare(features),
    )
    image_rnn = (context['image_rnn'][:, None]
                 if self.switch['image_to_recurrent'] else None)
    w, w_mm = self._words(tokens, image_rnn)
    _, r = self.rnn.scan(self.rnn.zero_carry(tokens.shape[:1]), w)
    a = self.sentence_terms(w_mm, r) + context['image_mm'][:, None]
    return self.predict(a, train=train)

  def init_carry(self, context: dict):
    return self.rnn.zero_carry(context['image_mm'].shape[:1])

  def step(self, carry, tokens: jax.Array, context: dict):
    image_rnn = (base.expand_to_beam(context['image_rnn'], tokens)
                 if self.switch['image_to_recurrent'] else None)
    w, w_mm = self._words(tokens, image_rnn)
    carry, r = self.rnn.step(carry, w)
    a = self.sentence_terms(w_mm, r)
    a = a + base.expand_to_beam(context['image_mm'], tokens)
    return self.predict(a), carry

  def sentence_states(self, tokens: jax.Array) -> jax.Array:
    """Everything of a sentence that no image changes (fast retrieval).

    Only for variants whose image does not enter the recurrence.

    Args:
      tokens: [sentences, time] int32 inputs (BOS first).

    Returns:
      [sentences, time, M] float32 `V_w w(t) + V_r r(t) + b`.
    """
    if self.switch['image_to_recurrent']:
      raise ValueError(f'variant {self.variant!r} feeds the image into the '
                       'recurrence: no image-free sentence states.')
    w, w_mm = self._words(tokens, None)
    _, r = self.rnn.scan(self.rnn.zero_carry(tokens.shape[:1]), w)
    return self.sentence_terms(w_mm, r)
