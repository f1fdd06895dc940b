"""The caption language of `shapes`: generating captions and judging them.

The language, on tokens (lower case, punctuation dropped)::

  caption  := [NUMBER ('shape' | 'shapes')] ['there' ('is' | 'are')]
              phrase ('and' phrase)*
  phrase   := np relation*
  np       := ('a' | 'an' | 'the') [size] [colour] shape
  relation := ('to the left of' | 'to the right of' | 'above' | 'below')
              (np | 'it')
            | ('on' | 'to') 'its' ('left' | 'right')

Meaning:
- `a/an ...` introduces a new entity; `the ...` refers back to the one
  entity introduced so far that fits its description (none or several:
  the caption is wrong).
- A relation is about the most recent noun phrase (its subject): in
  `A left of B above C`, A is left of B and B is above C.
- `it` and `its` stand for the entity mentioned just before the subject:
  `a blue square and a red circle on its left` puts the circle left of the
  square.
- `NUMBER shapes` states how many objects the scene holds.

A caption is correct for a scene when it parses, introduces exactly as many
entities as the scene has objects, and some one-to-one assignment of
entities to objects makes every attribute, reference, relation and count
true (relations tested on bounding boxes with `shapes_scenes.relation_holds`).
"""

from collections.abc import Mapping, Sequence
import dataclasses
import itertools
import json
from typing import Any

import numpy as np

from capjax.data import shapes_scenes
from capjax.metrics import tokenizer

NUMBERS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven',
           'eight', 'nine')
RELATION_WORDS = {
    'left': 'to the left of',
    'right': 'to the right of',
    'above': 'above',
    'below': 'below',
}
# Ways to say "<subject> is <relation> of the entity mentioned before it".
PRONOUN_FORMS = {
    'left': ('on its left', 'to its left', 'to the left of it'),
    'right': ('on its right', 'to its right', 'to the right of it'),
    'above': ('above it',),
    'below': ('below it',),
}
# Probability that a generated caption states the sizes of its objects.
SIZE_MENTION_PROB = 0.8
DISTINCT_TRIES = 50


# ----------------------------------------------------------------------------
# Generation.


def _article(next_word: str) -> str:
  return 'an' if next_word[0] in 'aeiou' else 'a'


def noun_phrase(obj: Mapping[str, Any], with_size: bool) -> str:
  """'a small red circle' (or 'a red circle' without the size)."""
  words = ([obj['size']] if with_size else []) + [obj['colour'], obj['shape']]
  return ' '.join([_article(words[0])] + words)


def definite_phrase(
    obj: Mapping[str, Any], objects: Sequence[Mapping[str, Any]]) -> str:
  """The shortest 'the ...' phrase that picks out `obj` among `objects`."""
  for keys in (('shape',), ('colour', 'shape'), ('size', 'shape'),
               ('size', 'colour', 'shape')):
    matches = [o for o in objects if all(o[k] == obj[k] for k in keys)]
    if len(matches) == 1:
      return ' '.join(['the'] + [obj[k] for k in keys])
  raise ValueError(f'No description picks out {obj} among {objects}.')


def _relation(rng, subject, reference, margin) -> str:
  relations = shapes_scenes.true_relations(subject, reference, margin)
  if not relations:
    raise ValueError(f'No relation holds between {subject} and {reference}.')
  return relations[int(rng.integers(len(relations)))]


def _pronoun(rng, relation) -> str:
  forms = PRONOUN_FORMS[relation]
  return forms[int(rng.integers(len(forms)))]


def _pronoun_tail(rng, objs, start, with_size, margin) -> list[str]:
  """'and <o_k> <relation to o_{k-1}>' for every k >= start."""
  words = []
  for k in range(start, len(objs)):
    relation = _relation(rng, objs[k], objs[k - 1], margin)
    words += ['and', noun_phrase(objs[k], with_size),
              _pronoun(rng, relation)]
  return words


def _relation_body(rng, objs, with_size, margin) -> list[str]:
  """'<o1> <rel> <o2> and <o3> <rel> it ...' (a lone object: '<o1>')."""
  words = [noun_phrase(objs[0], with_size)]
  if len(objs) > 1:
    relation = _relation(rng, objs[0], objs[1], margin)
    words += [RELATION_WORDS[relation], noun_phrase(objs[1], with_size)]
  return words + _pronoun_tail(rng, objs, 2, with_size, margin)


def _template(rng, name, objs, with_size, margin) -> str:
  """One caption of template `name` for objects in the order `objs`."""
  if name == 'plain':
    words = _relation_body(rng, objs, with_size, margin)
  elif name == 'there':
    words = ['there is', noun_phrase(objs[0], with_size)]
    words += _pronoun_tail(rng, objs, 1, with_size, margin)
  elif name == 'and_it':
    words = [noun_phrase(objs[0], with_size)]
    words += _pronoun_tail(rng, objs, 1, with_size, margin)
  elif name == 'count':
    noun = 'shape' if len(objs) == 1 else 'shapes'
    words = [f'{NUMBERS[len(objs)]} {noun} :']
    words += _relation_body(rng, objs, with_size, margin)
  elif name == 'the':
    words = _relation_body(rng, objs[:2], with_size, margin)
    for k in range(2, len(objs)):
      reference = objs[int(rng.integers(k))]
      relation = _relation(rng, objs[k], reference, margin)
      words += ['and', noun_phrase(objs[k], with_size),
                RELATION_WORDS[relation], definite_phrase(reference, objs)]
  else:
    raise ValueError(f'Unknown template {name!r}.')
  return ' '.join(words)


def templates(num_objects: int) -> tuple[str, ...]:
  """Names of the templates that can describe `num_objects` objects."""
  if num_objects == 1:
    return ('plain', 'there', 'count')
  names = ('plain', 'there', 'and_it')
  if num_objects < len(NUMBERS):
    names += ('count',)
  if num_objects >= 3:
    names += ('the',)
  return names


def reading_order(objects: Sequence[Mapping[str, Any]]) -> list:
  """Objects from left to right (top to bottom where they overlap in x)."""
  return sorted(objects, key=lambda o: (o['bbox'][0], o['bbox'][1]))


def generate_captions(
    scene: Mapping[str, Any], rng: np.random.Generator,
    count: int = 5, allowed: Sequence[str] | None = None,
    order: str = 'random') -> list[str]:
  """Draws `count` captions of `scene`, distinct when the language allows.

  Each caption takes a random template, a random order of the objects, and
  random true relations; it states every object once and all sizes or none.

  Args:
    scene: a scene dict (see `shapes_scenes`).
    rng: the random generator.
    count: how many captions.
    allowed: template names to draw from (default: all of `templates`).
    order: 'random' mentions the objects in a random order in each caption;
      'reading' always from left to right (`reading_order`).

  Returns:
    `count` caption strings, each correct for `scene`.
  """
  objects = list(scene['objects'])
  margin = scene['relation_margin']
  names = templates(len(objects))
  if allowed is not None:
    names = tuple(n for n in names if n in allowed) or names
  captions = []
  for _ in range(DISTINCT_TRIES):
    if order == 'reading':
      ordered = reading_order(objects)
    else:
      ordered = [objects[i] for i in rng.permutation(len(objects))]
    name = names[int(rng.integers(len(names)))]
    with_size = bool(rng.random() < SIZE_MENTION_PROB)
    caption = _template(rng, name, ordered, with_size, margin)
    if caption not in captions:
      captions.append(caption)
    if len(captions) == count:
      return captions
  distinct = len(captions)  # A lone object has few distinct captions.
  while len(captions) < count:
    captions.append(captions[len(captions) % distinct])
  return captions


# ----------------------------------------------------------------------------
# Parsing and judging.


@dataclasses.dataclass(frozen=True)
class Mention:
  """A noun phrase: a new entity ('a ...') or a reference ('the ...')."""

  definite: bool
  size: str | None
  colour: str | None
  shape: str


@dataclasses.dataclass(frozen=True)
class Statement:
  """Mentions in order, relations (subject, relation, object), the count."""

  mentions: tuple[Mention, ...]
  relations: tuple[tuple[int, str, int], ...]
  count: int | None


class _Parser:
  """Recursive descent over tokens; every method returns None on failure."""

  def __init__(self, tokens: Sequence[str]):
    self.tokens = list(tokens)
    self.pos = 0
    self.mentions: list[Mention] = []
    self.relations: list[tuple[int, str, int]] = []

  def _peek(self, offset: int = 0) -> str | None:
    index = self.pos + offset
    return self.tokens[index] if index < len(self.tokens) else None

  def _take(self, *words: str) -> bool:
    """Consumes `words` if they come next."""
    if self.tokens[self.pos:self.pos + len(words)] == list(words):
      self.pos += len(words)
      return True
    return False

  def _take_one_of(self, options) -> str | None:
    word = self._peek()
    if word is not None and word in options:
      self.pos += 1
      return word
    return None

  def parse(self) -> Statement | None:
    count = None
    number = self._peek()
    if number in NUMBERS and self._peek(1) in ('shape', 'shapes'):
      count = NUMBERS.index(number)
      self.pos += 2
    if self._take('there'):
      if self._take_one_of(('is', 'are')) is None:
        return None
    if not self._phrase():
      return None
    while self._take('and'):
      if not self._phrase():
        return None
    if self.pos != len(self.tokens):
      return None
    return Statement(tuple(self.mentions), tuple(self.relations), count)

  def _noun_phrase(self) -> int | None:
    """Parses a noun phrase; returns its mention index."""
    article = self._take_one_of(('a', 'an', 'the'))
    if article is None:
      return None
    size = self._take_one_of(shapes_scenes.SIZES)
    colour = self._take_one_of(shapes_scenes.COLOURS)
    shape = self._take_one_of(shapes_scenes.SHAPES)
    if shape is None:
      return None
    self.mentions.append(Mention(article == 'the', size, colour, shape))
    return len(self.mentions) - 1

  def _phrase(self) -> bool:
    subject = self._noun_phrase()
    if subject is None:
      return False
    while True:
      relation, target = self._relation()
      if relation is None:
        return target is None
      if target == 'it':
        # The mention just before the subject.
        if subject == 0:
          return False
        self.relations.append((subject, relation, subject - 1))
      else:
        self.relations.append((subject, relation, target))
        subject = target

  def _relation(self) -> tuple[str | None, Any]:
    """(relation, target) with target a mention index or 'it'.

    Returns (None, None) when no relation follows and (None, 'error') when
    one starts but does not parse.
    """
    if self._take('to', 'the', 'left', 'of'):
      relation = 'left'
    elif self._take('to', 'the', 'right', 'of'):
      relation = 'right'
    elif self._take_one_of(('above', 'below')):
      relation = self.tokens[self.pos - 1]
    elif self._take_one_of(('on', 'to')):
      if not self._take('its'):
        return None, 'error'
      side = self._take_one_of(('left', 'right'))
      return (side, 'it') if side else (None, 'error')
    else:
      return None, None
    if self._take('it'):
      return relation, 'it'
    target = self._noun_phrase()
    return (relation, target) if target is not None else (None, 'error')


def parse(caption: str) -> Statement | None:
  """Parses a caption (any text); None when it is not in the language."""
  # Punctuation is dropped, also if a tokenizer were to keep it.
  tokens = [t for t in tokenizer.tokenize(caption)
            if any(c.isalnum() for c in t)]
  if not tokens:
    return None
  return _Parser(tokens).parse()


def _fits(mention: Mention, obj: Mapping[str, Any]) -> bool:
  return (mention.shape == obj['shape']
          and mention.colour in (None, obj['colour'])
          and mention.size in (None, obj['size']))


def _true_under(
    statement: Statement, objects: Sequence[Mapping[str, Any]],
    assignment: Sequence[int], margin: float) -> bool:
  """Whether `statement` holds when entity k is objects[assignment[k]]."""
  referents = []  # Object index of each mention.
  introduced = []
  for mention in statement.mentions:
    if mention.definite:
      fitting = [i for i in introduced if _fits(mention, objects[i])]
      if len(fitting) != 1:
        return False
      referents.append(fitting[0])
    else:
      index = assignment[len(introduced)]
      if not _fits(mention, objects[index]):
        return False
      introduced.append(index)
      referents.append(index)
  return all(
      shapes_scenes.relation_holds(
          relation, objects[referents[s]]['bbox'],
          objects[referents[o]]['bbox'], margin)
      for s, relation, o in statement.relations)


def load_scene(scene: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
  """A scene dict from a dict or its JSON text (as stored in the dataset)."""
  if isinstance(scene, Mapping):
    return dict(scene)
  return json.loads(scene)


def caption_is_correct(
    caption: str, scene: Mapping[str, Any] | str | bytes) -> bool:
  """Whether `caption` is a true and complete description of `scene`.

  Args:
    caption: any text, e.g. a model's output.
    scene: the scene dict, or its JSON text (the dataset's `scene` feature).

  Returns:
    True when the caption parses, each object is introduced exactly once
    ('a ...'), and every stated attribute, reference, relation and count is
    true (see the module docstring for the language and its meaning).
  """
  statement = parse(caption)
  if statement is None:
    return False
  scene = load_scene(scene)
  objects = scene['objects']
  if statement.count is not None and statement.count != len(objects):
    return False
  num_entities = sum(not m.definite for m in statement.mentions)
  if num_entities != len(objects):
    return False
  margin = scene['relation_margin']
  return any(
      _true_under(statement, objects, assignment, margin)
      for assignment in itertools.permutations(range(len(objects))))
