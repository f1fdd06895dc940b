"""What `dataset.rare_words` makes of a split's captions before encoding."""

import ml_collections

from capjax.data import caption_cleaning
from capjax.data import pipeline
from capjax.data import vocab as vocab_lib

CHOICES = ('unk', 'drop')  # rare words become UNK | are removed


def as_trained(dataset: ml_collections.ConfigDict, vocab: vocab_lib.Vocab,
               source):
  """The split whose captions encode as the training pipeline's do.

  Seed 000 removes the words seen fewer than `min_count` times from its
  captions (`rare_words='drop'`); capjax's default (`'unk'`) encodes them
  as UNK and leaves the split as it is. Every path that encodes a split's
  captions for a captioner (training batches, perplexity, likelihood
  retrieval, consensus reranking) goes through here, so none sees an UNK
  that training never did. References are left as `pipeline.open_split`
  made them.

  Args:
    dataset: the `dataset` config section (reads `rare_words`).
    vocab: the training split's vocabulary.
    source: a split (`pipeline.open_split`).
  """
  if dataset.get('rare_words', 'unk') != 'drop':
    return source
  return pipeline.CleanedSource(
      source,
      caption_cleaning.keep_only(
          frozenset(vocab.words[len(vocab_lib.SPECIAL_TOKENS):])),
      clean_references=False)
