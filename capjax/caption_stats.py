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
import numpy as np

from capjax.data import pipeline
from capjax.data import vocab as vocab_lib
from capjax.metrics import tokenizer

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py[:variant]).')


def caption_stats(captions: list[str], *, min_count: int, max_len: int,
                  drop_rare: bool) -> dict[str, float]:
  """Figures of training captions that were already cleaned.

  Args:
    captions: [N] the cleaned training captions.
    min_count: words seen fewer times leave the vocabulary.
    max_len: decoder length (words + EOS).
    drop_rare: rare words are removed from the captions (else they are UNK).

  Returns:
    'captions', 'unique_words', 'vocabulary' (kept words, specials not
    counted), 'longest_cleaned' (words), 'mean_words', 'max_words' (both
    after removing rare words when `drop_rare`), 'rare_token_share' and
    'cut_share' (captions with more than max_len - 1 words).
  """
  vocab = vocab_lib.Vocab.build(captions, min_count=min_count)
  kept = set(vocab.words[len(vocab_lib.SPECIAL_TOKENS):])
  tokens = [tokenizer.tokenize(c) for c in captions]
  unique = {w for t in tokens for w in t}
  total = sum(len(t) for t in tokens)
  rare = sum(w not in kept for t in tokens for w in t)
  longest = max(len(t) for t in tokens)
  if drop_rare:
    tokens = [[w for w in t if w in kept] for t in tokens]
  lengths = np.array([len(t) for t in tokens])
  return {
      'captions': len(captions),
      'unique_words': len(unique),
      'vocabulary': len(kept),
      'longest_cleaned': longest,
      'mean_words': float(lengths.mean()),
      'max_words': int(lengths.max()),
      'rare_token_share': rare / max(total, 1),
      'cut_share': float(np.mean(lengths > max_len - 1)),
  }


def main(argv):
  del argv
  d = _CONFIG.value.dataset
  source = pipeline.open_split(d, 'train')
  stats = caption_stats(
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
