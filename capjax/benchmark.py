r"""Benchmarks: `python -m capjax.benchmark WHAT [--flags] [--json]`.

  python -m capjax.benchmark metrics --num_images=5000

WHAT names a module of `capjax.benchmarks` in `BENCHMARKS`; its
`run(config) -> list[dict]` returns one record per measurement. They are
printed as a table, or as one JSON object per line with --json.
"""

import importlib
import json

from absl import app
from absl import flags

# WHAT -> module in capjax.benchmarks with `run(config) -> list[dict]`.
BENCHMARKS = {
    'metrics': 'capjax.benchmarks.metrics',
}

_JSON = flags.DEFINE_bool('json', False, 'One JSON object per line.')
_NUM_IMAGES = flags.DEFINE_integer(
    'num_images', 5000, 'metrics: images of real COCO captions to score.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed repetitions.')
_WARMUP = flags.DEFINE_integer('warmup', 1, 'Untimed warm-up runs.')
_TOOLKIT = flags.DEFINE_bool(
    'toolkit', True, 'metrics: also time pycocoevalcap when installed.')
_CAPTIONS = flags.DEFINE_string(
    'captions', None, 'metrics: COCO caption annotation file to draw from '
    '(default: ../shared/data/coco_val2014_captions/'
    'captions_val2014_text_only.json).')


def format_records(records: list[dict]) -> str:
  """A plain table of records (union of their keys as columns)."""
  columns = list(dict.fromkeys(k for r in records for k in r))

  def cell(value):
    if isinstance(value, float):
      return f'{value:.4g}'
    return str(value)

  rows = [[cell(r.get(c, '')) for c in columns] for r in records]
  widths = [max([len(c)] + [len(row[i]) for row in rows])
            for i, c in enumerate(columns)]
  lines = ['  '.join(c.ljust(w) for c, w in zip(columns, widths))]
  lines += ['  '.join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
  return '\n'.join(lines)


def main(argv):
  if len(argv) != 2 or argv[1] not in BENCHMARKS:
    raise app.UsageError(
        f'Name one benchmark: {", ".join(sorted(BENCHMARKS))}.')
  module = importlib.import_module(BENCHMARKS[argv[1]])
  config = {
      'num_images': _NUM_IMAGES.value,
      'repeats': _REPEATS.value,
      'warmup': _WARMUP.value,
      'toolkit': _TOOLKIT.value,
      'captions': _CAPTIONS.value,
  }
  records = module.run(config)
  if _JSON.value:
    for record in records:
      print(json.dumps(record))
  else:
    print(format_records(records))


if __name__ == '__main__':
  app.run(main)
