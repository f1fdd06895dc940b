r"""Caption image files with a trained workdir.

  python -m capjax.caption --workdir=runs/shapes img1.png img2.jpg
  python -m capjax.caption --workdir=runs/shapes --beam_size=3 img.png

Prints one `path<TAB>caption` line per image, using the checkpoint's own
config (image size, decoder) and vocabulary. A missing or unreadable file is
named in one `error:` line on stderr, the other files are still captioned,
and the exit code is 1 when any file was bad.
"""

import sys

from absl import app
from absl import flags

from capjax import checkpointing
from capjax import flag_errors
from capjax import inference
from capjax import logs
from capjax.data import images as images_lib

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training workdir.')
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'latest', ['latest', 'best'], 'Which checkpoint to use.'
)
_BEAM_SIZE = flags.DEFINE_integer(
    'beam_size', 0, 'Beam width (0: the config\'s decoder; 1: greedy).',
    lower_bound=0,
)
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size', 16, 'Images decoded together (the last batch is padded).',
    lower_bound=1,
)
flags.mark_flag_as_required('workdir')


def readable(paths: list[str]) -> list[str]:
  """The paths that decode as images; each other one named on stderr."""
  good, errors = images_lib.split_readable(paths)
  for error in errors:
    print(f'error: {error}', file=sys.stderr)
  return good


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError('Name at least one image file to caption.')
  logs.quiet_libraries(progress=False)
  try:  # a missing workdir is the one problem to report, before any file
    checkpointing.find_checkpoint(_WORKDIR.value, _CHECKPOINT.value)
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  good = readable(paths)
  if good:
    try:
      captions = inference.caption_files(
          _WORKDIR.value, good, which=_CHECKPOINT.value,
          beam_size=_BEAM_SIZE.value, batch_size=_BATCH_SIZE.value,
      )
    except (ValueError, FileNotFoundError) as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(1)
    for path, caption in zip(good, captions):
      print(f'{path}\t{caption}')
  if len(good) < len(paths):
    sys.exit(1)  # Each bad file is named above; the others are captioned.


if __name__ == '__main__':
  app.run(main, flags_parser=flag_errors.parse_flags)
