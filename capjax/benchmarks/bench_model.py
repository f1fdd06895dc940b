"""The fixed benchmark model and its synthetic batches, on capjax's real code.

So that figures compare across frameworks, the speed benchmarks train and
decode one fixed Show-and-Tell model: a 2048-float image feature ->
Dense(2048 -> E) is the first LSTM input, then the embedded caption tokens;
one LSTM layer of H units; Dense(H -> V) logits; masked cross-entropy over
captions whose lengths are uniform in [T/2, T]; Adam; float32 matmuls
unless `dtype` says bfloat16 (`model.dtype`). Defaults: batch 64, T = 20,
V = 5000, H = 512, E = 256.

It is built the way a user builds a model: a `config_base.base_config()`
with the `identity` encoder (precomputed features), `captioning.create`, and
`train.train_step` / `decoding.decode`, so library speed-ups show in the
figures. Other captioners and cells are a `decoder` string away
(`ModelSize.decoder`: 'lstm', 'gru', 'merge', 'soft_attention/gru', ...).
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import config_base
from capjax import train
from capjax.models import captioning
from capjax.tasks import captioning as captioning_task

FEATURE_DIM = 2048
CELL_NAMES = ('lstm', 'gru')
LEARNING_RATE = 1e-3
PAD_ID, BOS_ID, EOS_ID, FIRST_WORD_ID = 0, 1, 2, 4


@dataclasses.dataclass(frozen=True)
class ModelSize:
  """What a benchmark trains or decodes.

  Attributes:
    decoder: 'lstm' or 'gru' (the benchmark Show-and-Tell with that cell), or
      a captioner of `captioning.DECODERS` with an optional '/cell'
      ('merge', 'soft_attention/gru').
    batch: captions per train step, or images per decode batch.
    max_len: T, caption tokens (EOS included) = decoder steps.
    vocab: V, vocabulary size (PAD, BOS, EOS and UNK included).
    hidden: H, recurrent state size.
    embed: E, word (and image) embedding size.
    feature_dim: size of the precomputed image feature.
    grid_cells: 0 for flat features [batch, feature_dim]; L > 0 for a grid
      [batch, L, feature_dim] (what soft attention attends over).
    dtype: matmul compute dtype, 'float32' or 'bfloat16' (model.dtype).
    output_capacity: share of the batch*time positions the train step's
      output layer computes (model.output_capacity; 0 = all).
  """

  decoder: str = 'lstm'
  batch: int = 64
  max_len: int = 20
  vocab: int = 5000
  hidden: int = 512
  embed: int = 256
  feature_dim: int = FEATURE_DIM
  grid_cells: int = 0
  dtype: str = 'float32'
  output_capacity: float = 0.0

  @property
  def captioner(self) -> str:
    """The captioner's name in `captioning.DECODERS`."""
    name = self.decoder.split('/')[0]
    return 'show_tell' if name in CELL_NAMES else name

  @property
  def cell(self) -> str:
    """The recurrent cell: 'lstm' or 'gru'."""
    parts = self.decoder.split('/')
    if parts[0] in CELL_NAMES:
      return parts[0]
    return parts[1] if len(parts) > 1 else 'lstm'

  def validate(self) -> None:
    """Raises ValueError naming the bad setting."""
    if self.captioner not in captioning.DECODERS or self.cell not in CELL_NAMES:
      raise ValueError(
          f'--decoder={self.decoder!r}: use lstm, gru, or one of '
          f'{sorted(captioning.DECODERS)} with an optional /lstm or /gru.'
      )
    for name in ('batch', 'max_len', 'hidden', 'embed', 'feature_dim'):
      if getattr(self, name) < 1:
        raise ValueError(f'--{name} must be >= 1, got {getattr(self, name)}.')
    if self.max_len < 2:
      raise ValueError(f'--max_len must be >= 2, got {self.max_len}.')
    if self.dtype not in ('float32', 'bfloat16'):
      raise ValueError(
          f"--dtype={self.dtype!r}: use 'float32' or 'bfloat16'.")
    if not 0 <= self.output_capacity <= 1:
      raise ValueError('--output_capacity must be in [0, 1], got '
                       f'{self.output_capacity}.')
    if self.vocab <= FIRST_WORD_ID:
      raise ValueError(
          f'--vocab must be > {FIRST_WORD_ID} (PAD, BOS, EOS, UNK and a '
          f'word), got {self.vocab}.'
      )

  def as_record(self) -> dict:
    """The configuration keys of a benchmark record."""
    return {
        'decoder': self.captioner,
        'cell': self.cell,
        'batch': self.batch,
        'max_len': self.max_len,
        'vocab': self.vocab,
        'hidden': self.hidden,
        'embed': self.embed,
        'feature_dim': self.feature_dim,
        'grid_cells': self.grid_cells,
        'dtype': self.dtype,
        'output_capacity': self.output_capacity,
    }


def config(size: ModelSize) -> ml_collections.ConfigDict:
  """The experiment config of the benchmark model (`config_base` fields)."""
  size.validate()
  c = config_base.base_config()
  c.model.decoder = size.captioner
  c.model.cell = size.cell
  c.model.embed_dim = size.embed
  c.model.hidden_dim = size.hidden
  c.model.attention_dim = size.embed
  c.model.dropout = 0.0
  c.model.encoder.name = 'identity'
  c.model.dtype = size.dtype
  c.model.output_capacity = size.output_capacity
  c.dataset.max_len = size.max_len
  c.train.batch_size = size.batch
  c.train.attention_lambda = 0.0
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = LEARNING_RATE
  c.optimizer.schedule = 'constant'
  c.optimizer.warmup_steps = 0
  c.optimizer.grad_clip_norm = 0.0
  return c


def features(size: ModelSize, seed: int = 0) -> np.ndarray:
  """Random image features: [batch, (grid_cells,) feature_dim] float32."""
  rng = np.random.default_rng(seed)
  shape = (size.batch,) + ((size.grid_cells,) if size.grid_cells else ())
  return rng.standard_normal(shape + (size.feature_dim,), np.float32)


def caption_tokens(size: ModelSize, seed: int = 0) -> np.ndarray:
  """Random captions with lengths uniform in [T/2, T].

  Args:
    size: the model size (batch, max_len T, vocab).
    seed: numpy seed.

  Returns:
    [batch, T + 1] int32: BOS, then L - 1 random words and EOS (L tokens
    predicted, L uniform in [ceil(T/2), T]), then PAD.
  """
  rng = np.random.default_rng(seed + 1)
  length = size.max_len
  lengths = rng.integers((length + 1) // 2, length + 1, size.batch)
  tokens = np.full((size.batch, length + 1), PAD_ID, np.int32)
  tokens[:, 0] = BOS_ID
  words = rng.integers(FIRST_WORD_ID, size.vocab, (size.batch, length))
  for row, n in enumerate(lengths):
    tokens[row, 1:n] = words[row, : n - 1]
    tokens[row, n] = EOS_ID
  return tokens


def batch(size: ModelSize, seed: int = 0) -> dict[str, np.ndarray]:
  """A training batch: 'image' features and 'tokens' [batch, T + 1]."""
  return {'image': features(size, seed), 'tokens': caption_tokens(size, seed)}


@dataclasses.dataclass(frozen=True)
class TrainSetup:
  """What a train-step benchmark runs: `step_fn(state, batch, rng)`."""

  model: captioning.Captioner
  step_fn: object  # the pure `train.train_step` with model and optimizer bound
  state: train.TrainState
  batch: dict
  rng: jax.Array


def train_setup(size: ModelSize, seed: int = 0) -> TrainSetup:
  """The model, optimizer, initial state and one device-resident batch."""
  cfg = config(size)
  cfg.seed = seed
  example = jax.device_put(batch(size, seed))
  run = train.setup(cfg, captioning_task.synthetic_meta(size.vocab), example)
  return TrainSetup(run.model, run.step_fn, run.state, example,
                    run.dropout_rng)


def init_params(size: ModelSize, seed: int = 0):
  """Fresh parameters of the benchmark model (for decoding)."""
  cfg = config(size)
  model = captioning.create(cfg, size.vocab)
  example = batch(size, seed)
  params = jax.jit(model.init)(
      jax.random.key(seed), example['image'][:1],
      jnp.asarray(example['tokens'][:1, :-1]),
  )
  return model, params
