"""English stop words for seed 000's preprocessing (captions without them).

NLTK's list is used when its `stopwords` corpus is installed; NLTK's data
cannot be downloaded here, so capjax ships its own list of English function
words (pronouns, articles, auxiliaries, prepositions, conjunctions) for
everyone else. `words()` says which one is in use.
"""

import functools

from capjax.metrics import tokenizer

SHIPPED = frozenset('''
a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during
each few for from further had has have having he her here hers herself him
himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours ourselves out over own same
she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when
where which while who whom why will with would you your yours yourself
yourselves
'''.split())


@functools.lru_cache(maxsize=1)
def words() -> tuple[frozenset[str], str]:
  """(the stop words, 'nltk' or 'capjax')."""
  try:
    from nltk.corpus import stopwords  # pylint: disable=g-import-not-at-top
    return frozenset(stopwords.words('english')), 'nltk'
  except (ImportError, LookupError):
    return SHIPPED, 'capjax'


def remove(caption: str) -> str:
  """The caption's tokens (capjax's tokenizer) without stop words, joined."""
  stop, _ = words()
  return ' '.join(w for w in tokenizer.tokenize(caption) if w not in stop)
