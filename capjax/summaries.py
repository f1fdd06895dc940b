"""TensorBoard scalars (tensorboardX: event files without TensorFlow)."""

import os
import struct

import tensorboardX
from tensorboardX.proto import event_pb2
from tensorboardX.proto import summary_pb2

SUBDIR = 'tensorboard'  # the event files' folder in a workdir


class Writer:
  """Writes scalars under `<workdir>/tensorboard` on the lead process only.

  Each tag is the name as given, e.g. `simplicity:test/i2t_p@10/africa`:
  the split and metric names of `eval/<split>_metrics.json` and the printed
  tables. (tensorboardX's `add_scalar` would rename characters outside
  `[-/\\w.]` to '_', so the same figure would be named two ways; TensorBoard
  reads any tag.)
  """

  def __init__(self, workdir: str, *, enabled: bool = True):
    self._writer = None
    if enabled:
      self._writer = tensorboardX.FileWriter(
          os.path.join(workdir, SUBDIR)
      )

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if self._writer is None:
      return
    summary = summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag=name, simple_value=float(value))
        for name, value in values.items()
    ])
    self._writer.add_summary(summary, step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


def read_scalars(workdir: str) -> dict[str, list[tuple[int, float]]]:
  """The scalars of a workdir's event files: {tag: [(step, value), ...]}.

  Reads the TFRecord framing (length, its CRC, the event, its CRC) without
  checking the CRCs; files in name order, events in file order.
  """
  directory = os.path.join(workdir, SUBDIR)
  scalars = {}
  for name in sorted(os.listdir(directory)):
    with open(os.path.join(directory, name), 'rb') as f:
      data = f.read()
    position = 0
    while position + 12 <= len(data):
      (length,) = struct.unpack('<Q', data[position:position + 8])
      start = position + 12  # after the length and its CRC
      event = event_pb2.Event.FromString(data[start:start + length])
      position = start + length + 4  # after the event's CRC
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append(
            (event.step, value.simple_value))
  return scalars
