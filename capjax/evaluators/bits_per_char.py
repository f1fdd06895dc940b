"""The story model's evaluator: held-out bits/char, a unigram baseline, a story.

`run(params)` returns `bits_per_char` on the held-out text (the state
carried across windows, `stories.bits_per_char`), the training text's
unigram baseline `unigram_bits_per_char`, and keeps a sample story primed
with `config.eval.story_seed`, which `write` saves to
`eval/<split>_story.json`.
"""

import os

import jax

from capjax import atomic_write
from capjax import progress
from capjax import stories
from capjax.data import text_corpus
from capjax.tasks import language_model


class Evaluator:
  """Built once; the held-out text is read and encoded here."""

  def __init__(self, config, task, model, meta, split='heldout', mesh=None):
    del task, mesh
    self.config = config
    self.split = split
    self.model = model
    train_ids, self.heldout, chars, _ = language_model.open_corpus(config)
    if chars != language_model.vocab_of(meta):
      raise ValueError('The corpus gives other characters than the '
                       "checkpoint's meta: the corpus changed since training.")
    self.unigram = text_corpus.unigram_bits(train_ids, self.heldout,
                                            len(chars))
    self.writer = stories.StoryWriter(model, chars,
                                      length=config.eval.story_length)
    self.story = None

  @staticmethod
  def metric_names(config) -> set[str]:
    del config
    return {'bits_per_char', 'unigram_bits_per_char'}

  def run(self, params) -> dict[str, float]:
    self.story, = self.writer.write(
        params, [self.config.eval.story_seed],
        jax.random.key(self.config.seed + 1),
        temperature=self.config.eval.temperature)
    bar = progress.bar(stories.predicted_chars(len(self.heldout)),
                       'characters', f'bits_per_char {self.split}')
    bits = stories.bits_per_char(self.model, params, self.heldout,
                                 progress=bar)
    bar.close()
    return {'bits_per_char': bits, 'unigram_bits_per_char': self.unigram}

  def write(self, workdir: str) -> None:
    if self.story is None:
      raise ValueError('Evaluator.write before run.')
    atomic_write.write_json(
        os.path.join(workdir, 'eval', f'{self.split}_story.json'),
        {'seed': self.config.eval.story_seed, 'story': self.story})
