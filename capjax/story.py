r"""Hashtags and a story for each image file: the seed's full pipeline.

  python -m capjax.story --tags_workdir=runs/tags --story_workdir=runs/story \
      [--length=500] [--seed=0] [--temperature=0.8] [--gallery=OUT.html] \
      [--tags_checkpoint=best] [--story_checkpoint=best] IMAGES...

Prints, per image, its hashtags and a story of `--length` characters seeded
with its top tag; `--gallery` also writes image, tags (with tag attention
maps) and story side by side. A missing or unreadable image, a workdir
without a checkpoint or of the wrong kind of model is one `error:` line
(each bad image named, the others still told) and exit code 1.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from capjax import flag_errors
from capjax import story_pipeline
from capjax.data import images as images_lib

_TAGS = flags.DEFINE_string('tags_workdir', None, 'A trained tag model.')
_STORY = flags.DEFINE_string('story_workdir', None, 'A trained story model.')
_LENGTH = flags.DEFINE_integer('length', 500, 'Characters per story.')
_SEED = flags.DEFINE_integer('seed', 0, 'Sampling seed.')
_TEMPERATURE = flags.DEFINE_float('temperature', 0.8, 'Sampling temperature.')
_TOP_K = flags.DEFINE_integer('top_k', 0, 'Sample from the k best (0 = all).')
_TOP_P = flags.DEFINE_float('top_p', 1.0, 'Nucleus mass (1 = all).')
_GALLERY = flags.DEFINE_string('gallery', '', 'Also write this HTML page.')
_TAGS_CHECKPOINT = flags.DEFINE_enum(
    'tags_checkpoint', 'latest', ['latest', 'best'],
    'Which checkpoint of --tags_workdir to use.')
_STORY_CHECKPOINT = flags.DEFINE_enum(
    'story_checkpoint', 'latest', ['latest', 'best'],
    'Which checkpoint of --story_workdir to use.')


def main(argv):
  paths = argv[1:]
  if not paths:
    flag_errors.fail('give at least one image file.')
  logging.set_verbosity(logging.WARNING)
  good, bad = images_lib.split_readable(paths)
  for error in bad:
    print(f'error: {error}', file=sys.stderr)
  if good:
    try:
      results = story_pipeline.tell(
          _TAGS.value, _STORY.value, good, length=_LENGTH.value,
          seed=_SEED.value, temperature=_TEMPERATURE.value,
          top_k=_TOP_K.value, top_p=_TOP_P.value,
          tags_checkpoint=_TAGS_CHECKPOINT.value,
          story_checkpoint=_STORY_CHECKPOINT.value)
    except (ValueError, FileNotFoundError) as e:  # a missing or wrong workdir
      print(f'error: {e}', file=sys.stderr)
      sys.exit(1)
    print(story_pipeline.format_text(results))
    if _GALLERY.value:
      gallery = story_pipeline.write_gallery(_GALLERY.value, results)
      print(f'\nGallery: {gallery}')
  if bad:
    sys.exit(1)  # Each bad file is named above; the others are told.


if __name__ == '__main__':
  flags.mark_flags_as_required(['tags_workdir', 'story_workdir'])
  app.run(main, flags_parser=flag_errors.parse_flags)
