r"""Hashtags and a story for each image file: the seed's full pipeline.

  python -m capjax.story --tags_workdir=runs/tags --story_workdir=runs/story \
      [--length=500] [--seed=0] [--temperature=0.8] [--gallery=OUT.html] \
      IMAGES...

Prints, per image, its hashtags and a story of `--length` characters seeded
with its top tag; `--gallery` also writes image, tags (with tag attention
maps) and story side by side.
"""

from absl import app
from absl import flags
from absl import logging

from capjax import story_pipeline

_TAGS = flags.DEFINE_string('tags_workdir', None, 'A trained tag model.')
_STORY = flags.DEFINE_string('story_workdir', None, 'A trained story model.')
_LENGTH = flags.DEFINE_integer('length', 500, 'Characters per story.')
_SEED = flags.DEFINE_integer('seed', 0, 'Sampling seed.')
_TEMPERATURE = flags.DEFINE_float('temperature', 0.8, 'Sampling temperature.')
_TOP_K = flags.DEFINE_integer('top_k', 0, 'Sample from the k best (0 = all).')
_TOP_P = flags.DEFINE_float('top_p', 1.0, 'Nucleus mass (1 = all).')
_GALLERY = flags.DEFINE_string('gallery', '', 'Also write this HTML page.')


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError('Give at least one image file.')
  logging.set_verbosity(logging.WARNING)
  results = story_pipeline.tell(
      _TAGS.value, _STORY.value, paths, length=_LENGTH.value,
      seed=_SEED.value, temperature=_TEMPERATURE.value, top_k=_TOP_K.value,
      top_p=_TOP_P.value)
  print(story_pipeline.format_text(results))
  if _GALLERY.value:
    print(f'\nGallery: {story_pipeline.write_gallery(_GALLERY.value, results)}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['tags_workdir', 'story_workdir'])
  app.run(main)
