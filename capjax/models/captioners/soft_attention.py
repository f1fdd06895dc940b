"""Show, Attend and Tell: soft (deterministic) attention captioner.

At every step an MLP scores each grid cell against the previous hidden state,
the softmax weights `alpha` form a context vector, a learned gating scalar
`beta = sigmoid(f(h))` scales it, and the RNN reads the previous word and the
gated context. The state starts from MLPs of the mean grid cell, and the
output is the paper's deep output `L_o(E y + L_h h + L_z z)`. Attention
weights are sown as `intermediates/attention` [batch, time, cells] so the
doubly stochastic regulariser and the gallery can use them.

What does not change over time is computed once in `prepare`: the projected
keys of the grid cells. The word half of the RNN input projection is computed
for the whole sequence at once; only the context half runs per step.
"""

from flax import linen as nn
import jax
import jax.numpy as jnp

from capjax.models.captioners import base
from capjax.models import cells
from capjax.models import precision


class AttentionStep(nn.Module):
  """One attend-then-recur step; scanned over time and reused for decoding."""

  hidden_dim: int
  attention_dim: int
  cell: str
  dtype: str = 'float32'  # matmul compute dtype (model.dtype)

  def setup(self):
    self.rnn = cells.create(self.cell, self.hidden_dim, dtype=self.dtype)
    self.query = precision.dense(self.attention_dim, self.dtype, use_bias=False)
    self.score = precision.dense(1, self.dtype, use_bias=False)
    self.gate = precision.dense(1, self.dtype)
    self.context_proj = precision.dense(
        self.rnn.num_gates * self.hidden_dim, self.dtype, use_bias=False
    )

  def project_words(self, words: jax.Array) -> jax.Array:
    """[..., embed] -> [..., gates * hidden] (bias included)."""
    return self.rnn.project(words)

  def attend(self, hidden: jax.Array, keys: jax.Array, grid: jax.Array):
    """Soft attention of each hidden state over its image's grid.

    Args:
      hidden: [batch, n, hidden] (n = 1, or the beam width).
      keys: [batch, cells, attention] projected grid.
      grid: [batch, cells, dim].

    Returns:
      context: [batch, n, dim] gated context; alpha: [batch, n, cells].
    """
    energy = jnp.tanh(keys[:, None] + self.query(hidden)[:, :, None])
    alpha = jax.nn.softmax(self.score(energy)[..., 0], axis=-1)
    context = jnp.einsum('bnl,bld->bnd', alpha, grid)
    beta = jax.nn.sigmoid(self.gate(hidden))
    return beta * context, alpha

  def __call__(self, carry, word_proj: jax.Array, keys, grid):
    """One step.

    Args:
      carry: cell carry, leaves [batch, n, hidden].
      word_proj: [batch, n, gates * hidden] projected previous word.
      keys: [batch, cells, attention]; grid: [batch, cells, dim].

    Returns:
      `(carry, (hidden [batch, n, hidden], context [batch, n, dim],
      alpha [batch, n, cells]))`.
    """
    context, alpha = self.attend(self.rnn.output(carry), keys, grid)
    carry, hidden = self.rnn.step(carry, word_proj + self.context_proj(context))
    return carry, (hidden, context, alpha)


class SoftAttention(nn.Module):
  """Show-Attend-and-Tell soft attention captioner."""

  WORD_EMBEDDING = 'embed'  # its word lookup (model.embedding_init)
  # What `head_inputs` and the output layer use (the deep output).
  HEAD_PARAMS = ('out_hidden', 'out_context', 'output')

  vocab_size: int
  embed_dim: int = 256
  hidden_dim: int = 512
  attention_dim: int = 256
  cell: str = 'lstm'
  dropout: float = 0.0
  fused: bool = True  # unused: attention needs the per-step scan
  unroll: int = 1
  remat: bool = True  # recompute attention energies in the backward pass
  dtype: str = 'float32'  # matmul compute dtype (model.dtype)

  def setup(self):
    dense = lambda n, **kw: precision.dense(n, self.dtype, **kw)
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.keys = dense(self.attention_dim)
    self.init_c = dense(self.hidden_dim)
    self.init_h = dense(self.hidden_dim)
    self.attend_step = AttentionStep(
        self.hidden_dim, self.attention_dim, self.cell, self.dtype
    )
    self.out_hidden = dense(self.embed_dim)
    self.out_context = dense(self.embed_dim, use_bias=False)
    self.drop = nn.Dropout(self.dropout)
    self.output = dense(self.vocab_size)

  def prepare(self, features: base.Features) -> dict:
    grid = features[1]
    return {'grid': grid, 'keys': self.keys(grid)}

  def init_carry(self, context: dict):
    mean = context['grid'].mean(axis=1)
    return self.attend_step.rnn.carry_from_hidden(
        jnp.tanh(self.init_c(mean)), jnp.tanh(self.init_h(mean))
    )

  def _deep_output(self, words, hidden, context, *, train: bool):
    return base.rows(
        self.output, self._deep_inputs(words, hidden, context, train=train)
    )

  def _deep_inputs(self, words, hidden, context, *, train: bool):
    """The input of the output layer: [..., embed_dim]."""
    out = (
        words
        + base.rows(self.out_hidden, hidden)
        + base.rows(self.out_context, context)
    )
    return self.drop(out, deterministic=not train)

  def __call__(
      self,
      features: base.Features,
      tokens: jax.Array,
      *,
      train: bool,
      captions_per_image: int = 1,
  ):
    """Teacher forcing.

    Args:
      features: (global [images, dim], grid [images, cells, dim]).
      tokens: [images * captions_per_image, time] int32 inputs; the captions
        of an image are consecutive rows.
      train: dropout on.
      captions_per_image: R; the captions of an image attend to its grid
        together (no copy of the grid or keys per caption).

    Returns:
      logits [images * R, time, vocab].
    """
    outputs = self.outputs(
        features, tokens, train=train, captions_per_image=captions_per_image
    )
    return self.head(outputs, train=train)

  def head(self, outputs: dict, *, train: bool) -> jax.Array:
    """Deep output: {'words', 'hidden', 'context'} [..., *] -> [..., vocab]."""
    return base.rows(self.output, self.head_inputs(outputs, train=train))

  def head_inputs(self, outputs: dict, *, train: bool) -> jax.Array:
    """What the output layer `output` reads: [..., embed_dim]."""
    hidden = self.drop(outputs['hidden'], deterministic=not train)
    return self._deep_inputs(
        outputs['words'], hidden, outputs['context'], train=train
    )

  def outputs(
      self,
      features: base.Features,
      tokens: jax.Array,
      *,
      train: bool,
      captions_per_image: int = 1,
  ) -> dict:
    """What the deep output reads, each [images * R, time, ...].

    'words' (embedded inputs), 'hidden' (RNN outputs) and 'context' (gated
    attention contexts); the attention weights are sown.
    """
    ctx = self.prepare(features)
    images, cells = ctx['keys'].shape[:2]
    carry = jax.tree.map(
        lambda x: jnp.repeat(x[:, None], captions_per_image, axis=1),
        self.init_carry(ctx),
    )
    words = self.embed(tokens)
    word_proj = self.attend_step.project_words(
        self.drop(words, deterministic=not train)
    )
    word_proj = word_proj.reshape(
        (images, captions_per_image) + word_proj.shape[1:]
    )

    def body(module, carry, x, keys, grid):
      return module(carry, x, keys, grid)

    # Rematerialised: the backward pass recomputes each step's attention
    # energies [images, R, cells, attention] instead of storing them for every
    # step, which on CPUs costs more in memory traffic than in arithmetic.
    scan = nn.scan(
        nn.remat(body) if self.remat else body,
        variable_broadcast='params',
        split_rngs={'params': False},
        in_axes=(2, nn.broadcast, nn.broadcast),
        out_axes=2,
        unroll=self.unroll,
    )
    _, (hidden, context, alpha) = scan(
        self.attend_step, carry, word_proj, ctx['keys'], ctx['grid']
    )
    hidden, context, alpha = (
        x.reshape((images * captions_per_image,) + x.shape[2:])
        for x in (hidden, context, alpha)
    )
    self.sow('intermediates', 'attention', alpha)
    return {'words': words, 'hidden': hidden, 'context': context}

  def step(self, carry, tokens: jax.Array, context: dict):
    """As the scanned call, one token at a time; also returns nothing else."""
    logits, carry, _ = self.step_with_attention(carry, tokens, context)
    return logits, carry

  def step_with_attention(self, carry, tokens: jax.Array, context: dict):
    """One step that also returns alpha [batch, (beam,) cells]."""
    squeeze = tokens.ndim == 1
    if squeeze:
      tokens, carry = tokens[:, None], jax.tree.map(lambda x: x[:, None], carry)
    words = self.embed(tokens)
    carry, (hidden, ctx, alpha) = self.attend_step(
        carry, self.attend_step.project_words(words), context['keys'],
        context['grid'],
    )
    logits = self._deep_output(words, hidden, ctx, train=False)
    if squeeze:
      logits, alpha = logits[:, 0], alpha[:, 0]
      carry = jax.tree.map(lambda x: x[:, 0], carry)
    return logits, carry, alpha
