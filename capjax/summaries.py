"""TensorBoard scalars (tensorboardX: event files without TensorFlow)."""

import os

import tensorboardX


class Writer:
  """Writes scalars under `<workdir>/tensorboard` on the lead process only."""

  def __init__(self, workdir: str, *, enabled: bool = True):
    self._writer = None
    if enabled:
      self._writer = tensorboardX.SummaryWriter(
          os.path.join(workdir, 'tensorboard')
      )

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in values.items():
      self._writer.add_scalar(name, float(value), step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
