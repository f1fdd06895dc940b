r"""Extracts CNN features: of every split of a dataset, or of a folder.

Config mode (a features dataset that training reads through
`config.dataset.features`):

  python -m capjax.extract_features \
      --config=configs/features/flickr8k_inception_v3.py \
      --workdir=runs/flickr8k_inception_v3 \
      --config.features.weights=weights/inception_v3

writes `WORKDIR/features/` (see `capjax/feature_dataset.py`): per split
`image_ids.npy`, `global.npy` [N, D] and with features.grid `grid.npy`
[N, L, D], plus `info.json`.

Folder mode (one .npz for a loose folder of images):

  python -m capjax.extract_features --weights=weights/vgg16 \
      --images=../shared/data/flickr8k_1k/images --output=vgg16_fc7.npz
  python -m capjax.extract_features --weights=weights/vgg16 --crop=ten \
      --grid --dtype=bfloat16 --images=photos/ --output=vgg16.npz

writes `names` [N], `global` [N, D], with --grid `grid` [N, L, D], and
`skipped` (unreadable files).

Either way a killed run started again with the same flags continues where
it stopped (partial results in `SPLIT.partial/` or `OUTPUT.partial/`).
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from capjax import extraction
from capjax import feature_dataset
from capjax import flag_errors
from capjax import logs
from capjax.data import crops
from capjax.models.encoders import checkpoint

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config mode: a configs/features/*.py file (dataset.* and '
    'features.*).', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Config mode: the features go to WORKDIR/features.')
_WEIGHTS = flags.DEFINE_string(
    'weights', None, 'An encoder checkpoint directory (from python -m '
    'capjax.convert_weights).')
_ARCH = flags.DEFINE_string(
    'arch', None, 'Optional check: the architecture the weights must be.')
_IMAGES = flags.DEFINE_string('images', None, 'A folder of images.')
_OUTPUT = flags.DEFINE_string('output', None, 'The .npz to write.')
_CROP = flags.DEFINE_enum('crop', 'squash', list(crops.MODES),
                          'squash: resize to size x size; center: shorter '
                          'side to --short_side, centre crop; ten: the '
                          'average of 10 crops (corners, centre, mirrored).')
_SIZE = flags.DEFINE_integer('size', 0, "Input side (0: the network's).")
_SHORT_SIDE = flags.DEFINE_integer(
    'short_side', 0, 'Shorter side before cropping (0: 256 at 224 px).')
_GRID = flags.DEFINE_bool('grid', False, 'Also store the grid features.')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                           'Compute dtype of convs and matmuls.')
_STORE = flags.DEFINE_enum('store_dtype', 'float16', ['float16', 'float32'],
                           'dtype of the stored features.')
_BATCH = flags.DEFINE_integer('batch', 32, 'Images per step.')
_CHUNK = flags.DEFINE_integer('chunk', 512, 'Images per saved partial '
                              'result.')
_THROTTLE = flags.DEFINE_float('throttle_s', 0.0, 'Testing: seconds to wait '
                               'after each saved chunk.')
FOLDER_FLAGS = ('weights', 'images', 'output')


def _config_mode() -> None:
  if not _WORKDIR.value:
    raise ValueError('--config needs --workdir (the features go to '
                     'WORKDIR/features).')
  summary = feature_dataset.extract_dataset(
      _CONFIG.value, _WORKDIR.value, throttle_s=_THROTTLE.value,
      command=' '.join(['python -m capjax.extract_features', *sys.argv[1:]]))
  counts = ', '.join(f'{k} {v}' for k, v in sorted(summary['splits'].items()))
  print(f'{summary["folder"]}: {counts} images; this run '
        f'{summary["images"] - summary["resumed_images"]} images at '
        f'{summary["images_per_s"]:.1f} images/s')


def main(argv):
  del argv
  logs.quiet_libraries()
  try:
    if _CONFIG.value is not None:
      _config_mode()
      return
    missing = [f'--{name}' for name in FOLDER_FLAGS
               if not flags.FLAGS[name].value]
    if missing:
      raise ValueError(f'Give --config and --workdir, or {", ".join(missing)}'
                       ' (folder mode needs --weights, --images, --output).')
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  settings = extraction.Settings(
      crop=_CROP.value, size=_SIZE.value, short_side=_SHORT_SIDE.value,
      grid=_GRID.value, dtype=_DTYPE.value, store_dtype=_STORE.value,
      batch=_BATCH.value, chunk=_CHUNK.value)
  try:
    if _ARCH.value:
      arch = checkpoint.read_info(_WEIGHTS.value)['arch']
      if arch != _ARCH.value:
        raise ValueError(f'--weights={_WEIGHTS.value} holds {arch}, not '
                         f'--arch={_ARCH.value}.')
    summary = extraction.extract_folder(
        _IMAGES.value, _WEIGHTS.value, _OUTPUT.value, settings,
        throttle_s=_THROTTLE.value)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  print(f'{_OUTPUT.value}: {summary["images"]} images, {summary["skipped"]} '
        f'skipped, {summary["images_per_s"]:.1f} images/s')


if __name__ == '__main__':
  app.run(main, flags_parser=flag_errors.parse_flags)
