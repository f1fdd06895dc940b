"""English stop words: NLTK's list when its data is installed, else our own.

NLTK's corpora cannot be downloaded at run time, so capjax ships a general
English list (function words: articles, pronouns, auxiliaries, prepositions,
conjunctions, a few adverbs). `english()` prefers NLTK's list when the
`stopwords` corpus is already on the machine, unless `builtin_only` asks for
ours (what datasets use, so a preparation does not depend on the machine).
"""

import functools

from capjax.metrics import tokenizer

# Written for capjax: lower-case function words of general English.
BUILTIN = frozenset("""
a about above after again against all am an and any are aren't as at be
because been before being below between both but by can can't cannot could
couldn't did didn't do does doesn't doing don't down during each few for from
further had hadn't has hasn't have haven't having he he'd he'll he's her here
here's hers herself him himself his how how's i i'd i'll i'm i've if in into
is isn't it it's its itself just let's me more most mustn't my myself no nor
not now of off on once only or other ought our ours ourselves out over own
same shan't she she'd she'll she's should shouldn't so some such than that
that's the their theirs them themselves then there there's these they they'd
they'll they're they've this those through to too under until up very was
wasn't we we'd we'll we're we've were weren't what what's when when's where
where's which while who who's whom why why's will with won't would wouldn't
you you'd you'll you're you've your yours yourself yourselves 's 've 're 'll
'd 'm n't also while onto upon within without among amongst across along
around behind beside besides beyond near toward towards via whose yet still
""".split())


@functools.cache
def english(builtin_only: bool = False) -> frozenset[str]:
  """The English stop words, lower case.

  Args:
    builtin_only: ignore NLTK even when its data is installed.

  Returns:
    NLTK's `stopwords.words('english')` when available (and not
    `builtin_only`), else `BUILTIN`.
  """
  if builtin_only:
    return BUILTIN
  try:
    from nltk.corpus import stopwords  # pylint: disable=g-import-not-at-top
    return frozenset(w.lower() for w in stopwords.words('english'))
  except (ImportError, LookupError, OSError):
    return BUILTIN


def is_stop_word(word: str, builtin_only: bool = False) -> bool:
  """Whether `word` (any case) is an English stop word."""
  return word.lower() in english(builtin_only)


def words() -> tuple[frozenset[str], str]:
  """(the stop words in use, 'nltk' or 'capjax')."""
  stop = english()
  return stop, 'capjax' if stop is BUILTIN else 'nltk'


def remove(caption: str) -> str:
  """The caption's tokens (capjax's tokenizer) without stop words, joined.

  Seed 000's preprocessing.
  """
  stop = english()
  return ' '.join(w for w in tokenizer.tokenize(caption) if w not in stop)
