r"""Vocabulary and caption-length figures of a config's training captions.

  python -m capjax.caption_stats \
      --config=configs/captioning/flickr8k_seed000.py

Prints what the config's preprocessing (`dataset.stop_words`,
`letter_words`, `min_count`, `rare_words`, `max_len`) makes of the training
split: unique words before and after `min_count`, words per caption, and
the share of captions `max_len` cuts.
"""

from absl import app
from ml_collections import config_flags

from capjax.data import caption_cleaning
from capjax.data import pipeline

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py[:variant]).')


def main(argv):
  del argv
  d = _CONFIG.value.dataset
  source = pipeline.open_split(d, 'train')
  stats = caption_cleaning.stats(
      pipeline.all_captions(source), min_count=d.min_count,
      max_len=d.max_len, drop_rare=d.get('rare_words', 'unk') == 'drop')
  print(f'{d.name} train: stop_words={d.get("stop_words", False)} '
        f'letter_words={d.get("letter_words", False)} '
        f'min_count={d.min_count} max_len={d.max_len}')
  for key, value in stats.items():
    print(f'  {key:18s}{value:.4g}' if isinstance(value, float)
          else f'  {key:18s}{value}')


if __name__ == '__main__':
  app.run(main)
