"""Pure-Python tokenizer that reproduces the COCO toolkit's PTB tokenization.

The COCO caption toolkit runs the Stanford PTBTokenizer (CoreNLP 3.4.1 jar,
`-preserveLines -lowerCase`) over all captions of a split, one caption per
line, and then drops a fixed list of punctuation tokens. This module rebuilds
the lexer rules that matter for captions (clitics, quotes, brackets, numbers,
fractions, hyphenated and slashed words, abbreviations and acronyms with their
sentence-end lookahead) with a longest-match scanner, and takes a fast path
for the common caption made only of letters, spaces, commas and a final
period. The lexer's rules, abbreviations and lookaheads are in `ptb_rules`.

The jar lexes the joined lines as one stream, so an abbreviation that ends a
caption looks ahead into the next caption (`"a t.v."` followed by a caption
starting with `"A"` yields `t.v. .`). `ptb_tokenize` takes the lines that
follow as an argument for that; `batch_tokenizer.tokenize_batch` tokenizes a
whole split that way; `tokenize` treats its text as a whole file.

Like the toolkit, tokens are lower-cased; a fraction or phone number such as
`25 1/2` is one token holding a no-break space (U+00A0), exactly as the jar
emits it. Non-ASCII characters follow the jar's own tables (`ptb_chars`,
measured from it): emoji, zero-width and other characters it cannot lex are
dropped, combining marks stay inside words, superscript digits stand alone.

Known differences from the jar, all rare in captions, are listed in
`ptb_chars`.
"""

import re
from typing import Sequence

from capjax.metrics import ptb_rules

# Tokens the toolkit removes after tokenizing (pycocoevalcap PTBTokenizer).
PUNCTUATIONS = frozenset([
    "''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!',
    ',', ':', '-', '--', '...', ';',
])
NBSP = '\u00a0'

_BRACKETS = {
    '(': '-LRB-', ')': '-RRB-', '[': '-LSB-', ']': '-RSB-', '{': '-LCB-',
    '}': '-RCB-',
}
# Vulgar fractions are lexed apart (as private-use stand-ins, since Python
# counts them as digits) and spelled out.
_VULGAR_FRACTIONS = {'\ue000': '1/4', '\ue001': '1/2', '\ue002': '3/4',
                     '\ue003': '1/3', '\ue004': '2/3'}
_CHAR_MAP = str.maketrans({
    '\u2018': "'", '\u2019': "'", '\u201b': "'", '\u201c': '"', '\u201d': '"',
    '\u00ab': '"', '\u00bb': '"', '\u2013': '\ue006', '\u2014': '\ue006',
    '\u2015': '\ue006', '\u2026': ' ... ',
    '\u00bc': '\ue000', '\u00bd': '\ue001', '\u00be': '\ue002',
    '\u2153': '\ue003', '\u2154': '\ue004',
    # What the jar reads as cp1252 or as currency (U+E005 stands for a
    # currency sign, which is '$' but never part of `US$`; U+E006 for a long
    # dash, a '--' of its own).
    '\u0080': '\ue005', '\u0091': "'", '\u0092': "'", '\u0093': '"',
    '\u0094': '"', '\u0096': '\ue006', '\u0097': '\ue006', '\u00a2': ' cents ',
    '\u00a3': ' # ', '\u00a4': '\ue005', '\u20a0': '\ue005',
    '\u20ac': '\ue005', '\u2039': "'", '\u203a': "'",
})
# The input's own characters in the range of the stand-ins above become a
# deleted control character (the jar deletes private-use characters).
_STAND_IN_RE = re.compile('[\ue000-\ue006]')
# The jar lexes a soft hyphen as a letter, then drops it from the token
# (a token of soft hyphens only becomes '-').
SOFT_HYPHEN = '\u00ad'
# HTML entities: &apos; and &amp; are read as ' and & everywhere (`it&apos;s`,
# `AT&amp;T`), the others are tokens (&nbsp; none).
_APOS_AMP_RE = re.compile(r'(?i)&(?:(apos)|amp);')
_ENTITIES = {'&lt;': '<', '&gt;': '>', '&quot;': "''", '&nbsp;': ''}
_SPACE_RE = re.compile(rf'[{ptb_rules.ANY_SPACE}]+')
# A run of letters before a space, a comma and a space, or the end.
_PLAIN_RE = re.compile(r'[A-Za-z]+(?=[ \t]|,[ \t]|,?\Z)')
# A caption made of letters, spaces, commas and one final period.
_FAST_RE = re.compile(r'[A-Za-z ,]*[A-Za-z](\.?) *\Z')
_FAST_UNSAFE_RE = re.compile(r'(?i)cannot|gonna|gotta|lemme|gimme|wanna')


class _Scanner:
  """Longest-match lexer over one text, with lookahead into what follows."""

  def __init__(self, text: str, following: str):
    self.text = text
    self.following = following  # Later lines of the stream, '\n'-joined.
    rules = (ptb_rules.RULES_ASCII if text.isascii() else
             ptb_rules.RULES_UNICODE)
    # Only the rules that can match somewhere in this text (a rule's match
    # holds one of its required characters).
    present = set(text)
    self.rules = [(regex, kind) for regex, kind, required in rules
                  if required is None or not required.isdisjoint(present)]

  def rest(self, pos: int) -> str:
    tail = self.text[pos:]
    if len(tail) < 64 and self.following is not None:
      tail = tail + '\n' + self.following
    return tail

  def tokens(self) -> list[str]:
    text = self.text
    out = []
    pos = 0
    size = len(text)
    while pos < size:
      space = _SPACE_RE.match(text, pos)
      if space:
        pos = space.end()
        continue
      plain = _PLAIN_RE.match(text, pos)
      if plain and plain.group().lower() not in ptb_rules.ASSIMILATIONS:
        out.append(plain.group())  # No rule matches more than a bare word.
        pos = plain.end()
        continue
      best_end, best_kind, best = pos, None, None
      for regex, kind in self.rules:
        match = regex.match(text, pos)
        if match:
          end = match.end()
          if end == size and kind == 'abbrev1':
            end = match.end('tok') + 2  # The line's end counts as context.
          if end == size and kind == 'smiley' and self.following is None:
            continue  # A smiley needs a character after it, even a newline.
          if end > best_end:
            best_end, best_kind, best = end, kind, match
      if best_kind is None:
        if not (ptb_rules.DELETED_CHAR_RE.match(text, pos) or
                text[pos] in ptb_rules.WORD_HYPHENS):
          out.append(text[pos])  # An unknown symbol is a token of its own.
        pos += 1
        continue
      if 'tok' in best.re.groupindex and best.group('tok') is not None:
        best_end = best.end('tok')  # Trailing context is lexed again.
      pos = self.emit(out, pos, best_end, best_kind)
    return out

  def emit(self, out: list[str], start: int, end: int, kind: str) -> int:
    """Appends the tokens of text[start:end]; returns where to go on."""
    text = self.text
    piece = text[start:end]
    if kind == 'keep':
      out.append(piece)
    elif kind == 'assim':
      cut = end - ptb_rules.ASSIMILATIONS[piece.lower()]
      out.append(text[start:cut])  # can|not, gon|na: the rest comes next.
      return cut
    elif kind in ('acronym', 'abbrev1'):
      return self.acronym(out, start, end, piece)
    elif kind == 'tag':
      out.append(piece.replace(' ', NBSP))
    elif kind == 'frac':
      out.append(piece.replace(' ', NBSP))
    elif kind == 'ellipsis':
      out.append('...')
    elif kind == 'dashes':
      out.append('--' if len(piece) < 5 else piece)  # The jar keeps 5 or more.
    elif kind == 'quote':
      out.append("''")  # Direction is irrelevant: all quotes are dropped.
    elif kind == 'entity':
      token = _ENTITIES[piece.lower()]
      if token:
        out.append(token)
    elif kind == 'bracket':
      out.append(_BRACKETS[piece])
    elif kind == 'smiley':
      out.append(piece.replace('(', '-LRB-').replace(')', '-RRB-'))
    elif kind == 'dash':
      out.append('--')
    elif kind == 'currency':
      out.append('$')
    elif kind == 'vulgar':
      out.append(_VULGAR_FRACTIONS[piece])
    return end

  def acronym(self, out: list[str], start: int, end: int, piece: str) -> int:
    """Abbreviations and acronyms ending in a period, with their lookahead."""
    word = piece[:-1]
    rest = self.rest(end)
    if rest[:1] in (',', ';', ':'):
      out.append(piece)  # A word keeps its period before , ; or :.
      return end
    if '.' not in word:
      kind = ptb_rules.abbrev_class(word)
      if kind == 1:
        out.append(piece)
        if ptb_rules.sentence_end_after_abbrev1(rest):
          out.append('.')
        return end
      if kind == 2:
        out.append(piece)
        return end
      if kind == 3:
        if re.match(rf'[{ptb_rules.ANY_SPACE}]?\d', rest):
          out.append(piece)
          return end
      if word.lower() in ptb_rules.ASSIMILATIONS:
        return self.emit(out, start, end - 1, 'assim')  # can|not|.
      if len(word) > 1 or not word.isascii():
        out.append(word)  # A plain word and its full stop.
        return end - 1
    if ptb_rules.sentence_starter_follows(rest):
      if len(word) == 1:
        out.append(word)
        return end - 1
      out.append(piece)
      out.append('.')
      return end
    out.append(piece)
    return end


def _fast_tokens(text: str) -> list[str] | None:
  """Tokens of a caption of letters, commas and a final period, else None."""
  match = _FAST_RE.match(text)
  if match is None:
    return None
  if match.group(1):
    last = text.rstrip(' ')[:-1].rsplit(' ', 1)[-1].rsplit(',', 1)[-1]
    if len(last) == 1 or ptb_rules.abbrev_class(last):
      return None
  if _FAST_UNSAFE_RE.search(text):
    return None
  return text.replace(',', ' ').replace('.', ' ').lower().split()


def _prepare(text: str) -> str:
  if '&' in text:
    text = _APOS_AMP_RE.sub(lambda m: "'" if m.group(1) else '&', text)
  if text.isascii():
    return text
  text = _STAND_IN_RE.sub('\x01', text)
  return text.translate(_CHAR_MAP)


def ptb_tokenize(text: str, following: str | None = None) -> list[str]:
  """PTB tokens of `text`, lower-cased, punctuation kept.

  Args:
    text: one caption (one line of the jar's input).
    following: the text of the lines after it in the same stream, if any;
      only an abbreviation that ends `text` looks at it.

  Returns:
    The tokens, as the jar prints them with `-lowerCase`.
  """
  text = _prepare(text.replace('\n', ' '))
  if following is not None:
    following = _prepare(following)
  tokens = _Scanner(text, following).tokens()
  if SOFT_HYPHEN in text:
    tokens = [t.replace(SOFT_HYPHEN, '') or '-' for t in tokens]
  return [token.lower() for token in tokens]


def tokenize(text: str) -> list[str]:
  """Tokenizes one caption exactly as the COCO toolkit does.

  PTB tokenization (lower-cased), then the toolkit's punctuation tokens are
  removed. The text is taken as a whole input (nothing follows it).

  Args:
    text: a caption.

  Returns:
    Its tokens, e.g. `"A man's hat."` -> `['a', 'man', "'s", 'hat']`.
  """
  fast = _fast_tokens(text)
  if fast is not None:
    return fast
  return toolkit_tokens(ptb_tokenize(text))


def toolkit_tokens(tokens: list[str]) -> list[str]:
  """The toolkit's tokens of one line of the jar's output.

  The toolkit right-strips the line (a last token may end in a space the jar
  kept, e.g. U+2000 in a URL) and drops its punctuation tokens.

  Args:
    tokens: the line's PTB tokens (`ptb_tokenize`).

  Returns:
    The tokens the toolkit scores.
  """
  if tokens and tokens[-1] != tokens[-1].rstrip():
    tokens = tokens[:-1] + [tokens[-1].rstrip()]
  return [t for t in tokens if t not in PUNCTUATIONS]


def to_toolkit_string(tokens: Sequence[str]) -> str:
  """The toolkit's tokenized form of a caption: tokens joined by spaces."""
  return ' '.join(tokens)
