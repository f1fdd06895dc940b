"""Caption cleaning before the vocabulary: stop words, non-words, rare words.

Seed 000 (`../shared/seeds/000_lstm_gru_captioning.txt`, section III) cleans
the Flickr8k captions before it builds its word list: it says it removes the
stop words, then drops the words seen fewer than 10 times, then finds the
longest caption (34 with its start and end markers). Its own figures do not
fit an ordinary stop-word list: the 8763 unique words it reports are exactly
what remains of the 40,460 Flickr8k captions after the common tutorial
cleaning (lower case, punctuation removed inside words, words of one
character and words with digits dropped), its longest training caption then
has 32 words (34 with the markers; after removing an English stop-word list
it has 21), and its example caption 'brown dog is running on the grass'
keeps 'is', 'on' and 'the'. So both are offered: `stop_words` (an English
list: NLTK's when its corpus is installed, else capjax's) and
`letter_words` (that tutorial cleaning). The caption is tokenised with the
metrics' tokenizer first and the kept tokens joined by spaces, so building a
vocabulary from a cleaned caption gives back the same tokens.

Rare words: seed 000 removes them from the captions (its encoder skips words
outside the vocabulary); capjax's default maps them to UNK. `keep_only`
builds the cleaner that removes them. `stats` gives the figures of cleaned
captions (`python -m capjax.caption_stats`).
"""

from collections.abc import Callable, Container
import string

import numpy as np

from capjax.data import stopwords
from capjax.data import vocab as vocab_lib
from capjax.metrics import tokenizer

_PUNCTUATION = str.maketrans('', '', string.punctuation)
# Brackets as the PTB tokenizer names them (lower case); dropped by the
# cleaners, since a joined '-lrb-' would tokenise again as 'lrb'.
BRACKETS = frozenset({'-lrb-', '-rrb-', '-lcb-', '-rcb-', '-lsb-', '-rsb-'})


def letter_word(token: str) -> str:
  """The token without ASCII punctuation if what is left is 2+ letters, else ''.

  The cleaning seed 000's figures imply: "t-shirt" -> "tshirt", "'s" -> '',
  "a" -> '', "2" -> '', "3rd" -> ''.
  """
  word = token.translate(_PUNCTUATION)
  return word if len(word) > 1 and word.isalpha() else ''


def cleaner(*, stop_words: bool,
            letter_words: bool) -> Callable[[str], str] | None:
  """caption -> its kept tokens joined by spaces; None when nothing is removed.

  Args:
    stop_words: remove English stop words (`capjax.data.stopwords.english`).
    letter_words: keep only `letter_word`s.
  """
  if not stop_words and not letter_words:
    return None
  stop = stopwords.english() if stop_words else frozenset()

  def clean(caption: str) -> str:
    kept = []
    for token in tokenizer.tokenize(caption):
      if token in stop or token in BRACKETS:
        continue
      if letter_words:
        token = letter_word(token)
        if not token or token in stop:
          continue
      kept.append(token)
    return ' '.join(kept)

  return clean


def keep_only(words: Container[str]) -> Callable[[str], str]:
  """caption -> its tokens that are in `words`, joined by spaces."""
  return lambda caption: ' '.join(
      w for w in tokenizer.tokenize(caption) if w in words)


def list_name(stop_words: bool) -> str:
  """Which stop-word list `cleaner` uses: 'nltk', 'capjax' or '' (none)."""
  return stopwords.words()[1] if stop_words else ''


def stats(captions: list[str], *, min_count: int, max_len: int,
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
