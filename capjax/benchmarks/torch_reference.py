"""The benchmark model's train step in PyTorch, for comparison (optional).

Runs only when `torch` imports (capjax never depends on it); otherwise the
train-step benchmark prints a note and goes on. The model is the one of
`bench_model` written the way PyTorch users write it: `nn.Linear` image
embedding as the first input, `nn.Embedding`, `nn.LSTM` / `nn.GRU`
(batch_first, one layer), `nn.Linear` logits, `F.cross_entropy` with
`ignore_index=PAD` averaged over real tokens, `torch.optim.Adam`, on the CPU
with torch's default threads; float32, or with `--dtype=bfloat16` PyTorch's
CPU mixed precision (`torch.autocast`). The FLOP count is capjax's for the same
model, so the two shares of the matmul rate compare directly.
"""

import sys

from capjax.benchmarks import bench_model
from capjax.benchmarks import timing


def available() -> bool:
  """Whether torch imports."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  del torch  # imported only to see that it can be
  return True


def _module(size: bench_model.ModelSize):
  """The benchmark Show-and-Tell model as a `torch.nn.Module`."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  class ShowTell(nn.Module):
    """Image embedding first, then words; one recurrent layer; logits."""

    def __init__(self):
      super().__init__()
      self.image_embed = nn.Linear(size.feature_dim, size.embed)
      self.embed = nn.Embedding(size.vocab, size.embed)
      rnn = nn.LSTM if size.cell == 'lstm' else nn.GRU
      self.rnn = rnn(size.embed, size.hidden, batch_first=True)
      self.output = nn.Linear(size.hidden, size.vocab)

    def forward(self, image, tokens):
      inputs = torch.cat(
          [self.image_embed(image)[:, None], self.embed(tokens)], dim=1)
      hidden, _ = self.rnn(inputs)
      return self.output(hidden[:, 1:])

  return ShowTell()


def train_step_fn(size: bench_model.ModelSize, dtype: str = 'float32'):
  """The PyTorch train step of the benchmark model, ready to time.

  Args:
    size: the benchmark model size (Show-and-Tell only).
    dtype: 'float32', or 'bfloat16' for the forward pass and loss under
      `torch.autocast('cpu', dtype=torch.bfloat16)` (PyTorch's own CPU mixed
      precision: float32 parameters and Adam, bfloat16 matmuls); the
      backward pass and the optimizer step run outside it, as PyTorch's
      documentation recommends.

  Returns:
    `step()` -> the loss as a float, or None (with a note on stderr) when
    torch is missing or the model has no PyTorch twin.
  """
  if not available():
    print('PyTorch is not installed: the PyTorch reference of the train step '
          'is skipped (pip install torch to compare).', file=sys.stderr)
    return None
  if size.captioner != 'show_tell' or size.grid_cells:
    print(f'No PyTorch reference for --decoder={size.decoder}: only the '
          'Show-and-Tell benchmark model has one.', file=sys.stderr)
    return None
  import contextlib  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from torch.nn import functional  # pylint: disable=g-import-not-at-top

  torch.manual_seed(0)
  model = _module(size)
  optimizer = torch.optim.Adam(model.parameters(),
                               lr=bench_model.LEARNING_RATE)
  batch = bench_model.batch(size)
  image = torch.from_numpy(batch['image'])
  tokens = torch.from_numpy(batch['tokens']).long()
  inputs, targets = tokens[:, :-1], tokens[:, 1:]
  if dtype == 'float32':
    precision = contextlib.nullcontext
  else:
    precision = lambda: torch.autocast('cpu', dtype=torch.bfloat16)

  def step():
    optimizer.zero_grad(set_to_none=True)
    with precision():
      logits = model(image, inputs)
      loss = functional.cross_entropy(
          logits.reshape(-1, size.vocab), targets.reshape(-1),
          ignore_index=bench_model.PAD_ID)
    loss.backward()
    optimizer.step()
    return float(loss.detach())

  return step


def record(size: bench_model.ModelSize, dtype: str, t: timing.Timing,
           loss: float, gflop_per_step: float) -> dict:
  """The train-step record of a timed PyTorch step."""
  import torch  # pylint: disable=g-import-not-at-top

  step_s = t.median_seconds
  return dict(
      benchmark='train_step', impl='pytorch', **size.as_record(),
      torch_dtype='float32' if dtype == 'float32' else 'bfloat16 autocast',
      torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
      step_ms=1e3 * step_s, min_step_ms=1e3 * t.min_seconds,
      max_step_ms=1e3 * t.max_seconds,
      tokens_per_s=size.batch * size.max_len / step_s,
      captions_per_s=size.batch / step_s,
      gflop_per_step=gflop_per_step,
      achieved_gflop_per_s=gflop_per_step / step_s,
      loss=loss, repeats=t.repeats, warmup=t.warmup,
  )


def train_step_records(
    size: bench_model.ModelSize, repeats: int, warmup: int, *,
    gflop_per_step: float, between=None) -> list[dict]:
  """Times the PyTorch train step; [] (and a note on stderr) without torch.

  Args:
    size: the benchmark model size; only the Show-and-Tell captioner has a
      PyTorch twin. `size.dtype` 'bfloat16' times the autocast step.
    repeats: timed steps.
    warmup: untimed steps first.
    gflop_per_step: the model's matmul GFLOPs per step (capjax's count).
    between: called after every timed step (see `timing.time_fn`).

  Returns:
    One record with the train-step keys, `impl` 'pytorch'.
  """
  step = train_step_fn(size, size.dtype)
  if step is None:
    return []
  t, loss = timing.time_fn(step, repeats, warmup, between=between)
  return [record(size, size.dtype, t, loss, gflop_per_step)]
