r"""Caption image files with a trained workdir.

  python -m capjax.caption --workdir=runs/shapes img1.png img2.jpg
  python -m capjax.caption --workdir=runs/shapes --beam_size=3 img.png

Prints one `path<TAB>caption` line per image, using the checkpoint's own
config (image size, decoder) and vocabulary.
"""

import sys

from absl import app
from absl import flags

from capjax import inference
from capjax import logs

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training workdir.')
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'latest', ['latest', 'best'], 'Which checkpoint to use.'
)
_BEAM_SIZE = flags.DEFINE_integer(
    'beam_size', 0, 'Beam width (0: the config\'s decoder; 1: greedy).'
)
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size', 16, 'Images decoded together (the last batch is padded).'
)
flags.mark_flag_as_required('workdir')


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError('Name at least one image file to caption.')
  logs.quiet_libraries(progress=False)
  try:
    captions = inference.caption_files(
        _WORKDIR.value, paths, which=_CHECKPOINT.value,
        beam_size=_BEAM_SIZE.value, batch_size=_BATCH_SIZE.value,
    )
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  for path, caption in zip(paths, captions):
    print(f'{path}\t{caption}')


if __name__ == '__main__':
  app.run(main)
