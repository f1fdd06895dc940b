r"""Vocabulary and caption-length figures of a config's training captions.

  python -m capjax.caption_stats \
      --config=configs/captioning/flickr8k_seed000.py
  python -m capjax.caption_stats --text_only \
      --config=configs/captioning/flickr8k_seed000.py \
      --config.dataset.manual_dir=../shared/data/flickr8k_text

Prints what the config's preprocessing (`dataset.stop_words`,
`letter_words`, `min_count`, `rare_words`, `max_len`) makes of the training
split: unique words before and after `min_count`, words per caption, and
the share of captions `max_len` cuts. `--text_only` reads a Flickr8k
folder's caption and split files without its photos (and counts the unique
words of every caption too, the figure seed 000 reports).
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from capjax.data import caption_cleaning
from capjax.data import flickr8k
from capjax.data import pipeline

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py[:variant]).')
_TEXT_ONLY = flags.DEFINE_bool(
    'text_only', False, 'Flickr8k only: read Flickr8k.token.txt and '
    'Flickr_8k.trainImages.txt of dataset.manual_dir, no photos needed.')


def _text_only_captions(d) -> tuple[list[str], list[str]]:
  """(training captions, every caption), cleaned, from the Flickr8k files."""
  if d.name != 'flickr8k':
    raise app.UsageError(f'--text_only reads Flickr8k files; the config\'s '
                         f'dataset is {d.name!r}.')
  by_file = flickr8k.read_token_file(
      os.path.join(d.manual_dir, 'Flickr8k.token.txt'))
  train = flickr8k.read_split_file(
      os.path.join(d.manual_dir, 'Flickr_8k.trainImages.txt'))
  clean = caption_cleaning.cleaner(
      stop_words=d.get('stop_words', False),
      letter_words=d.get('letter_words', False)) or (lambda c: c)
  cleaned = {name: [clean(c) for c in captions]
             for name, captions in by_file.items()}
  return ([c for name in train for c in cleaned.get(name, [])],
          [c for captions in cleaned.values() for c in captions])


def main(argv):
  del argv
  d = _CONFIG.value.dataset
  every = None
  if _TEXT_ONLY.value:
    captions, every = _text_only_captions(d)
  else:
    captions = pipeline.all_captions(pipeline.open_split(d, 'train'))
  stats = caption_cleaning.stats(
      captions, min_count=d.min_count, max_len=d.max_len,
      drop_rare=d.get('rare_words', 'unk') == 'drop')
  if every is not None:
    stats['unique_words_all_splits'] = caption_cleaning.stats(
        every, min_count=1, max_len=d.max_len, drop_rare=False)['unique_words']
  print(f'{d.name} train: stop_words={d.get("stop_words", False)} '
        f'letter_words={d.get("letter_words", False)} '
        f'min_count={d.min_count} max_len={d.max_len}')
  for key, value in stats.items():
    print(f'  {key:24s}{value:.4g}' if isinstance(value, float)
          else f'  {key:24s}{value}')


if __name__ == '__main__':
  app.run(main)
