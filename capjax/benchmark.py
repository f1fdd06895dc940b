r"""Benchmarks: `python -m capjax.benchmark WHAT [--flags] [--json]`.

  python -m capjax.benchmark train_step                # B64 T20 V5000 H512 E256
  python -m capjax.benchmark train_step --decoder=gru --batch=128
  python -m capjax.benchmark decode --beam=3 --batch=256
  python -m capjax.benchmark compile --max_lens=16,32,64
  python -m capjax.benchmark input --datasets=shapes,flickr8k
  python -m capjax.benchmark metrics --num_images=5000
  python -m capjax.benchmark retrieval --model=bilstm   # or alignment
  python -m capjax.benchmark extract --arch=vgg16,resnet50 \
      --dtype=float32,bfloat16 --batch=8
  python -m capjax.benchmark stories --batch=64 --story_length=500
  python -m capjax.benchmark retrieval --model=mrnn --retrieval_images=32
  python -m capjax.benchmark train_step --dtype=float32,bfloat16
  python -m capjax.benchmark train_step --dtype=bfloat16 --output_capacity=0,0.8
  python -m capjax.benchmark dtypes                   # matmul rate per dtype
  python -m capjax.benchmark finetune_step --arch=vgg16 --batch=8
  python -m capjax.benchmark frozen_step --arch=vgg16 --image_size=64
  python -m capjax.benchmark weights_read --arch=vgg16  # start-up reads
  python -m capjax.benchmark train_parts --dtype=float32,bfloat16  # by part
  XLA_FLAGS=--xla_force_host_platform_device_count=8 \
      python -m capjax.benchmark sharded_step   # batch gathered vs split

WHAT names a module of `capjax.benchmarks` in `BENCHMARKS`; its
`run(config) -> list[dict]` returns one record per measurement. They are
printed as a table, or as one JSON object per line with --json. Every run
also measures this machine's float32 matmul rate (a square matmul through
jax, in the same process, before and after the benchmark and between its
timed repetitions; the median of all samples): every record
carries `matmul_gflop_per_s`, and each record whose FLOPs are known
(`achieved_gflop_per_s`) its `share_of_matmul`.
"""

import contextlib
import datetime
import importlib
import json
import platform
import sys

from absl import app
from absl import flags
import jax

from capjax import flag_errors
from capjax.benchmarks import checks
from capjax.benchmarks import matmul_rate

# WHAT -> module in capjax.benchmarks with `run(config) -> list[dict]`.
BENCHMARKS = {
    'train_step': 'capjax.benchmarks.train_step',
    'train_parts': 'capjax.benchmarks.train_parts',
    'decode': 'capjax.benchmarks.decode',
    'compile': 'capjax.benchmarks.compile',
    'input': 'capjax.benchmarks.input',
    'metrics': 'capjax.benchmarks.metrics',
    'retrieval': 'capjax.benchmarks.retrieval',
    'extract': 'capjax.benchmarks.extract',
    'stories': 'capjax.benchmarks.stories',
    'dtypes': 'capjax.benchmarks.dtypes',
    'finetune_step': 'capjax.benchmarks.finetune_step',
    'frozen_step': 'capjax.benchmarks.frozen_step',
    'weights_read': 'capjax.benchmarks.weights_read',
    'sharded_step': 'capjax.benchmarks.sharded_step',
}

_JSON = flags.DEFINE_bool('json', False, 'One JSON object per line.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed repetitions.')
_WARMUP = flags.DEFINE_integer('warmup', 1, 'Untimed warm-up runs.')
_MATMUL_SIZE = flags.DEFINE_integer(
    'matmul_size', matmul_rate.DEFAULT_SIZE,
    'Side of the square float32 matmul that measures the machine.')
# The benchmark model (train_step, decode, compile).
_DECODER = flags.DEFINE_string(
    'decoder', 'lstm', 'lstm | gru (the Show-and-Tell benchmark model), or a '
    'captioner with an optional cell: merge, soft_attention/gru, ...')
_BATCH = flags.DEFINE_integer(
    'batch', None, 'Captions per train step (default 64) or images per '
    'decode batch (default 256).')
_MAX_LEN = flags.DEFINE_integer('max_len', 20, 'T: caption tokens.')
_VOCAB = flags.DEFINE_integer('vocab', 5000, 'V: vocabulary size.')
_HIDDEN = flags.DEFINE_integer('hidden', 512, 'H: recurrent state size.')
_EMBED = flags.DEFINE_integer('embed', 256, 'E: embedding size.')
_GRID_CELLS = flags.DEFINE_integer(
    'grid_cells', 0, 'Image features as a grid of this many 2048-d cells '
    '(for soft attention); 0: one flat feature.')
_DTYPE = flags.DEFINE_list(
    'dtype', ['float32'], 'Matmul compute dtype(s) of the model '
    '(model.dtype) or of the extract CNNs: float32 and/or bfloat16; several '
    'are timed in turns.')
_OUTPUT_CAPACITY = flags.DEFINE_list(
    'output_capacity', ['0'], 'train_step: share(s) of the batch*time '
    'positions the output layer computes (model.output_capacity; 0 = all, '
    'padded); several are timed in turns.')
_TORCH = flags.DEFINE_bool(
    'torch', True, 'train_step: also time the PyTorch reference when torch '
    'is installed.')
# decode
_MODES = flags.DEFINE_list('modes', ['greedy', 'beam'],
                           'decode: greedy and/or beam.')
_BEAM = flags.DEFINE_integer('beam', 3, 'decode/compile: beam size.')
# compile
_MAX_LENS = flags.DEFINE_list('max_lens', ['16', '32', '64'],
                              'compile: the max_len values.')
# input
_DATASETS = flags.DEFINE_list(
    'datasets', ['shapes', 'flickr8k'],
    'input: datasets to read (registered names, optionally name/config).')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'input: TFDS data dir (default: a fresh temporary one, '
    'so preparation is timed too).')
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'input: the Flickr8k files in their official layout '
    '(default: ../shared/data/flickr8k_1k).')
_IMAGE_SIZE = flags.DEFINE_integer(
    'image_size', None, "input: resize photos to this side (default: the "
    "dataset's, 224 for photos).")
_INPUT_BATCHES = flags.DEFINE_integer(
    'input_batches', 30, 'input: batches timed per pipeline figure.')
_TRAIN_STEPS = flags.DEFINE_integer(
    'train_steps', 20, 'input: train steps timed per training-run figure.')
_INPUT_CONFIG = flags.DEFINE_string(
    'input_config', 'shapes', 'input: the config (a configs/ file name with '
    'an optional :arg) whose model the training-run figure trains.')
# retrieval
_MODEL = flags.DEFINE_string(
    'model', 'bilstm', 'retrieval: bilstm | alignment (joint embeddings), '
    'mrnn (likelihood retrieval, fast path) or another captioner such as '
    'show_tell/gru (through the adapter).')
# metrics
_NUM_IMAGES = flags.DEFINE_integer(
    'num_images', 5000, 'metrics: images of real COCO captions to score.')
_TOOLKIT = flags.DEFINE_bool(
    'toolkit', True, 'metrics: also time pycocoevalcap when installed.')
_PROCESS_REPEATS = flags.DEFINE_integer(
    'process_repeats', 3, 'metrics: whole-process runs of `capjax.evaluate '
    '--references --results` and of the toolkit, alternating (0: none).')
_CAPTIONS = flags.DEFINE_string(
    'captions', None, 'metrics: COCO caption annotation file to draw from '
    '(default: ../shared/data/coco_val2014_captions/'
    'captions_val2014_text_only.json).')
# extract
_ARCH = flags.DEFINE_list(
    'arch', ['vgg16'], 'extract: CNNs to time (vgg16, vgg19, resnet50, '
    'resnet101, inception_v3, alexnet), timed in turns; finetune_step: the '
    "captioner's CNN (one).")
_RETRIEVAL_IMAGES = flags.DEFINE_integer(
    'retrieval_images', 32, 'retrieval: N images, 5 N sentences.')


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


def format_table(records: list[dict], machine: dict) -> str:
  """Records as tables, one per benchmark kind, under the machine's figures."""
  header = '  '.join(f'{k}={_short(v)}' for k, v in machine.items())
  kinds = list(dict.fromkeys(r.get('benchmark', '') for r in records))
  tables = [format_records([r for r in records
                            if r.get('benchmark', '') == kind])
            for kind in kinds]
  return '\n\n'.join([header] + tables)


def _short(value):
  return f'{value:.4g}' if isinstance(value, float) else str(value)


def with_machine_figures(
    records: list[dict], rate: matmul_rate.MatmulRate) -> list[dict]:
  """Adds the matmul rate to all records and the share where FLOPs are known."""
  out = []
  for record in records:
    record = dict(record, matmul_gflop_per_s=rate.gflop_per_s)
    if 'achieved_gflop_per_s' in record:
      record['share_of_matmul'] = matmul_rate.share(
          record['achieved_gflop_per_s'], rate)
    out.append(record)
  return out


def machine_record(rate: matmul_rate.MatmulRate) -> dict:
  """Where and when the figures were measured."""
  return dict(
      date=datetime.date.today().isoformat(),
      jax_version=jax.__version__,
      backend=jax.default_backend(),
      device=jax.devices()[0].device_kind,
      cpu_count=_cpu_count(),
      processor=platform.processor() or platform.machine(),
      **rate.as_record(),
  )
# stories
_STORY_LENGTH = flags.DEFINE_integer(
    'story_length', 500, 'stories: characters per story.')
_STORY_HIDDEN = flags.DEFINE_integer(
    'story_hidden', 256, 'stories: LSTM state size of the story model.')
_STORY_EMBED = flags.DEFINE_integer(
    'story_embed', 32, 'stories: character embedding size.')


def _cpu_count() -> int:
  import os  # pylint: disable=g-import-not-at-top
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def flag_config() -> dict:
  """The flags as the plain dict every benchmark's `run` takes."""
  return {
      'repeats': _REPEATS.value,
      'warmup': _WARMUP.value,
      'decoder': _DECODER.value,
      'batch': _BATCH.value,
      'max_len': _MAX_LEN.value,
      'vocab': _VOCAB.value,
      'hidden': _HIDDEN.value,
      'embed': _EMBED.value,
      'grid_cells': _GRID_CELLS.value,
      'dtype': _DTYPE.value,
      'output_capacity': [float(v) for v in _OUTPUT_CAPACITY.value],
      'torch': _TORCH.value,
      'modes': _MODES.value,
      'beam': _BEAM.value,
      'max_lens': [int(v) for v in _MAX_LENS.value],
      'datasets': _DATASETS.value,
      'data_dir': _DATA_DIR.value,
      'manual_dir': _MANUAL_DIR.value,
      'image_size': _IMAGE_SIZE.value,
      'input_batches': _INPUT_BATCHES.value,
      'train_steps': _TRAIN_STEPS.value,
      'input_config': _INPUT_CONFIG.value,
      'num_images': _NUM_IMAGES.value,
      'toolkit': _TOOLKIT.value,
      'captions': _CAPTIONS.value,
      'process_repeats': _PROCESS_REPEATS.value,
      'model': _MODEL.value,
      'archs': _ARCH.value,
      'dtypes': _DTYPE.value,
      'story_length': _STORY_LENGTH.value,
      'story_hidden': _STORY_HIDDEN.value,
      'story_embed': _STORY_EMBED.value,
      'retrieval_images': _RETRIEVAL_IMAGES.value,
  }


def main(argv):
  # A bad command line is one `error:` line (exit 2), not absl's usage text.
  names = ', '.join(sorted(BENCHMARKS))
  if len(argv) != 2:
    given = ' '.join(argv[1:]) or 'none'
    flag_errors.fail(f'name one benchmark (given: {given}); one of {names}.')
  if argv[1] not in BENCHMARKS:
    flag_errors.fail(f'unknown benchmark {argv[1]!r}: choose one of {names}.')
  config = flag_config()
  try:  # bad model flags fail before anything is timed
    checks.check_config(argv[1], config)
  except ValueError as e:
    flag_errors.fail(str(e))
  module = importlib.import_module(BENCHMARKS[argv[1]])
  rate = matmul_rate.MatmulRate(size=_MATMUL_SIZE.value,
                                repeats=max(_REPEATS.value, 3))
  # Only the results go to stdout (what libraries print, e.g. TFDS's
  # 'Downloading and preparing dataset', goes to stderr), so that --json
  # output is one JSON object per line.
  # The matmul rate is sampled before, between the timed repetitions of
  # every figure (`between`) and after: on a shared or throttled machine the
  # share then compares like with like.
  config['between'] = rate.sample
  with contextlib.redirect_stdout(sys.stderr):
    rate.measure()
    records = module.run(config)
    rate.measure()  # again at the end: the figure spans the whole run
  records = with_machine_figures(records, rate)
  machine = machine_record(rate)
  if _JSON.value:
    for record in records:
      print(json.dumps(dict(record, **machine)))
  else:
    print(format_table(records, machine))


if __name__ == '__main__':
  app.run(main, flags_parser=flag_errors.parse_flags)
