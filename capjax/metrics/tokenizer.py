"""Pure-Python tokenizer that reproduces the COCO toolkit's PTB tokenization.

The COCO caption toolkit runs the Stanford PTBTokenizer (CoreNLP 3.4.1 jar,
`-preserveLines -lowerCase`) over all captions of a split, one caption per
line, and then drops a fixed list of punctuation tokens. This module rebuilds
the lexer rules that matter for captions (clitics, quotes, brackets, numbers,
fractions, hyphenated and slashed words, abbreviations and acronyms with their
sentence-end lookahead) with a longest-match scanner, and takes a fast path
for the common caption made only of letters, spaces, commas and a final
period.

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

from capjax.metrics import ptb_chars

# Tokens the toolkit removes after tokenizing (pycocoevalcap PTBTokenizer).
PUNCTUATIONS = frozenset([
    "''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!',
    ',', ':', '-', '--', '...', ';',
])
NBSP = '\u00a0'

# Abbreviations measured against the 3.4.1 jar. ABBREV1: kept with their
# period, plus a sentence-final '.' when a space and an upper-case letter, a
# second space or a tag follows (or the input ends).
_ABBREV1 = frozenset(
    'Ala Apr Ariz Ark Assn Aug Az Bancorp Bhd Bldg Blvd Bros Calif Co Colo '
    'Conn Corp Cos Ct Dak Dec Del Esq Etc Est Ext Feb Fla Fri Ga Ill Inc Ind '
    'Intl Jan Jr Jul Jun Kan Kans Ky La Ltd Mar Mass Md Mich Minn Miss Mo Mon '
    'Mont Neb Nev Nov Oct Okla Ore Pa Penn Plc Pte Pty Ptys Rd Rt Sep Sept Seq '
    'Sq Sr Sys Tel Tenn Tex Thu Thurs Tue Tues Univ Va Vt Wash Wed Wis Wisc '
    'Wyo Al'.split())
# The jar takes an abbreviation in any case but these: the ones whose first
# letter must be upper-case, and a letter (by index) that must be lower-case.
_UPPER_INITIAL = frozenset(
    'ark az del ill la mass miss ore pa tex wash'.split())
_LOWER_LETTER = {'mfg': 1, 'mtg': 1, 'pte': 2, 'pty': 2, 'ptys': 2}


def _case_forms(word: str) -> str:
  """A regex of the case forms of `word` that the jar takes."""
  lower = word.lower()
  out = []
  for i, char in enumerate(lower):
    if i == 0 and lower in _UPPER_INITIAL:
      out.append(char.upper())
    elif _LOWER_LETTER.get(lower) == i:
      out.append(char)
    else:
      out.append(f'[{char}{char.upper()}]')
  return ''.join(out)


# The ABBREV1 rule's words (see `_abbrev_class`).
_ABBREV1_RE = '|'.join(_case_forms(w) for w in
                       sorted(_ABBREV1, key=lambda w: (-len(w), w)))

# ABBREV2: titles and company words, always kept with their period.
_ABBREV2 = frozenset(
    'Adj Adm Adv Alex Assoc Asst Atty Attys Ave Brig Capt Cf Cie Cmdr Col '
    'Comdr Cpl Dept Det Dr Drs Elec Ens Ft Gen Gov Govs Hon Insp Invt Jos '
    'Lieut Lt Maj Messrs Mfg Mlle Mme Mr Mrs Ms Msgr Mt Mtg Natl Pfc Ph Pres '
    'Prof Profs Pvt Rep Reps Rev Sen Sens Sfc Sgt Spc St Ste Supt Supts Treas '
    'Vs Wm'.split())
# ABBREV3: kept with their period only before a number.
_ABBREV3 = frozenset('art ca fig figs no nos op pp prop'.split())
# After an acronym, one of these words marks a sentence end.
_SENTENCE_STARTERS = frozenset(
    'A About According Additionally After An As At But Earlier He Her Here '
    'However If In It Last Many More Mr. Ms. Now Once One Other Our She Since '
    'So Some Such That The Their Then There These They This We When While '
    'What Yet You'.split())

_SPACE = ' \t\n\r\f\v\u00a0\u2028\u2029\u000b'
# Spaces to the jar but for its 'n and fraction rules (deleted too).
_WIDE_SPACE = ''.join(map(chr, [*range(0x2000, 0x200b), 0x3000]))
_ANY_SPACE = _SPACE + _WIDE_SPACE
_BRACKETS = {
    '(': '-LRB-', ')': '-RRB-', '[': '-LSB-', ']': '-RSB-', '{': '-LCB-',
    '}': '-RCB-',
}
# Vulgar fractions are lexed apart (as private-use stand-ins, since Python
# counts them as digits) and spelled out. The input's own private-use
# characters are dropped before the stand-ins are put in.
_VULGAR_FRACTIONS = {'\ue000': '1/4', '\ue001': '1/2', '\ue002': '3/4',
                     '\ue003': '1/3', '\ue004': '2/3'}
# Words the lexer splits, and the length of their second part.
ASSIMILATIONS = {
    'cannot': 3, 'gonna': 2, 'gotta': 2, 'lemme': 2, 'gimme': 2, 'wanna': 2,
}
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
# What the jar cannot lex and drops: its DELETED table (ASCII controls,
# spaces and more) and every character outside the BMP (it lexes UTF-16
# halves). They stay in the text, as in the jar: no letter or digit of a
# rule, a character of a rule that takes anything (`[^\s...]`), not a space
# to a lookahead, and dropped where no rule takes them.
_DELETED = (ptb_chars.regex_class(ptb_chars.DELETED) +
            '\U00010000-\U0010ffff')
_DELETED_CHAR_RE = re.compile(f'[{_DELETED}]')
# The input's own characters in the range of the stand-ins below become a
# deleted control character.
_STAND_IN_RE = re.compile('[\ue000-\ue006]')
# The jar lexes a soft hyphen as a letter, then drops it from the token
# (a token of soft hyphens only becomes '-').
SOFT_HYPHEN = '\u00ad'
# Hyphens the jar keeps only inside a word (as letters) and drops elsewhere.
_WORD_HYPHENS = '\u058a\u2010\u2011'
_LONE_HYPHEN_RE = re.compile(
    f'(?<!\\w)[{_WORD_HYPHENS}]+|[{_WORD_HYPHENS}]+(?!\\w)')
_EXTRA_LETTERS = (ptb_chars.regex_class(ptb_chars.EXTRA_LETTERS) +
                  _WORD_HYPHENS)
_NOT_WORD = ptb_chars.regex_class(ptb_chars.NOT_WORD)
_RULE_LETTERS = ptb_chars.regex_class(ptb_chars.RULE_LETTERS)

# A letter of the jar's words (with its extra letters, e.g. combining marks).
_L = rf'(?:[^\W\d_{_NOT_WORD}{_DELETED}]|[{_EXTRA_LETTERS}])'
_D = rf'[^\D{_DELETED}]'  # a digit
_LD = rf'(?:{_L}|{_D})'  # a word's letter or a digit
# A letter of the jar's other rules (JFlex's [:letter:]: no combining marks).
_RL = rf'(?:[^\W\d_{_NOT_WORD}{_DELETED}]|[{_RULE_LETTERS}])'
# A letter or a digit of the jar's other rules.
_A = rf'(?:[^\W_{_NOT_WORD}{_DELETED}]|[{_RULE_LETTERS}])'
_CLITIC = r'(?:[msdMSD]|[rR][eE]|[vV][eE]|[lL][lL])'
# The jar's file name extensions (measured: every extension of up to four
# letters or digits, and a few longer ones tried).
_FILE_EXTENSIONS = '|'.join(sorted(
    'c h x gz pl ps py bat bmp cgi cpp dll doc exe gif htm jar jpg mov mp3 '
    'pdf php png ppt sql tar txt wav xml zip docx html java jpeg class'.split(),
    key=lambda e: (-len(e), e)))
# The lexer's token classes (regex, kind); the longest match wins and ties
# go to the earlier entry, as in JFlex. Lookaheads after clitics and some
# rules are ASCII-only, as in the jar.
def _compile_rules(l: str, ld: str, rl: str, a: str,
                   d: str) -> list[tuple[re.Pattern, str]]:
  """The lexer's rules for the given character classes.

  Args:
    l: regex of a letter of words.
    ld: regex of a word's letter or digit.
    rl: regex of a letter of the other rules (apostrophe words).
    a: regex of a letter or digit of the other rules.
    d: regex of a digit.

  Returns:
    [(compiled rule, kind)], in priority order.
  """
  num = rf'(?:{d}*(?:[.:,]{d}+)+|{d}+(?:[.:,]{d}+)*)'
  thing = rf"(?:[dDoOlL]['`]{a})?{a}+(?:[-_](?:[dDoOlL]['`]{a})?{a}+)*"
  rules = [
      # SGML tags (spaces written as no-break spaces).
      (r'<[A-Za-z][-\w:.]*(?: +[A-Za-z][-\w:.]*(?:="[^"]*"|=\'[^\']*\')?)*'
       r' *\/? *>|<\/[A-Za-z][-\w:.]* *>|<[!?][-A-Za-z][^>\r\n]*>', 'tag'),
      # URL and e-mail (no dot needed); their characters are any but the
      # jar's few spaces and brackets.
      (r'https?:\/\/[^ \t\n\f\r"<>|(){}]+[^ \t\n\f\r"<>|(){}.!?,-]',
       'keep'),
      (r'<?[A-Za-z0-9][^ \t\n\f\r"<>|(){}\u00a0]*@'
       r'(?:[^ \t\n\f\r"<>|(){}.\u00a0]+\.)*[^ \t\n\f\r"<>|(){}.\u00a0]+>?',
       'keep'),
      (r'(?i:cannot|gonna|gotta|lemme|gimme|wanna)', 'assim'),
      # Trailing context (after `tok`) counts in the match's length but is
      # lexed again, whatever follows it.
      (r"(?P<tok>'[tT])(?i:is|was)", 'keep'),  # 't|is
      (rf"(?P<tok>{l}{ld}*(?:[.!?]{l}{ld}*)*)'{_CLITIC}", 'keep'),  # man|'s
      (r"(?P<tok>[A-Za-z]*[A-MO-Za-mo-z])(?i:n['`]t)", 'keep'),  # do|n't
      (rf'{l}{ld}*(?:[.!?]{l}{ld}*)*', 'keep'),  # WORD
      # ABBREV1 with two characters of trailing context (the end of the line
      # counts as two): `etc.x` is `etc. x` but `etc.ab` is one word.
      (rf'(?P<tok>(?:{_ABBREV1_RE})\.)(?s:..|.?\Z)', 'abbrev1'),
      # A file name (`1.jpg`, `img.2.x`) before a space, . , ! ? or the end.
      (rf'{ld}+(?:\.{ld}+)*\.(?i:{_FILE_EXTENSIONS})'
       rf'(?=[.,!?{_ANY_SPACE}]|\Z)', 'keep'),
      # A word or hyphenated thing keeps its period before , ; or : (which is
      # lexed again).
      (rf"(?P<tok>(?:{l}{ld}*(?:[.!?]{l}{ld}*)*|{thing}"
       rf"|[A-Z]+(?:[+&][A-Z]+)+)\.)[,;:]", 'keep'),
      # THING: letters and digits joined by - or _ (a signed or dotted
      # number is not one of its parts).
      (thing, 'keep'),
      (r'[A-Z]+(?:[+&][A-Z]+)+', 'keep'),  # AT&T, T+A
      (r'(?i:c\+\+|[cf]#)', 'keep'),  # programming languages
      (r'[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}'
       r'(?:\\?\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}',
       'keep'),  # and/or (ASCII only in the jar)
      (r'[A-Za-z0-9][A-Za-z0-9.,]*'  # ASCII only in the jar
       r'(?:-(?:[A-Za-z0-9]+|[A-Za-z](?:\.[A-Za-z])+\.))+', 'keep'),
      (rf'(?:{d}{{1,4}}[- \u00a0])?{d}{{1,4}}\\?\/{d}{{1,4}}', 'frac'),
      (rf"[-+]?{num}", 'keep'),  # NUMBER
      (r"(?i:n['`]t)", 'keep'),
      (rf"'{_CLITIC}(?![A-Za-z])", 'keep'),
      # Words the lexer keeps whole despite an apostrophe, one rule per
      # form so that the longest wins: 'n and '99 only before a space or
      # the end of the line (to 'n, U+2000 is no space), y' only before a
      # letter.
      (rf"(?i:'n'|'n(?=[{_SPACE}]|\Z)|dunkin'|somethin'|ol'|'em|'till?"
       rf"|'cause|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l|o['`]o)",
       'keep'),
      (rf"'{d}{d}(?=[{_ANY_SPACE}]|\Z)|'[2-9]0s|[yY]'(?={rl})|[lLdDjJ]'", 'keep'),
      (rf"[A-HJ-XZn]['`]{rl}{{2,}}", 'keep'),
      (rf"{rl}+[aeiouyAEIOUY]['`][aeiouA-Z]{rl}*", 'keep'),
      (r'[A-Za-z](?:\.[A-Za-z])*\.', 'acronym'),  # ASCII only in the jar
      (r'\.\.\.+', 'ellipsis'),
      (r'--+', 'dashes'),
      (r'[?!]+', 'keep'),
      (r'"|``|\'\'|`|\'', 'quote'),
      (rf'#{l}+', 'keep'),  # hashtag
      (r'@[A-Za-z_][A-Za-z_0-9]*', 'keep'),
      (r'[A-Z]*\$|#+|@+|_+|\*+', 'keep'),
      (rf'{l}+\.', 'acronym'),
      (r'(?i:&(?:lt|gt|quot|nbsp);)', 'entity'),
      (rf'&#{d}+;', 'keep'),
      (r'[()\[\]{}]', 'bracket'),
      # Smileys: a brow, eyes, a nose and a mouth (round brackets written as
      # -LRB- -RRB-), and Asian smileys.
      (r"[<>]?[:;=][-o*']?[()DPdpO\\{@|\[\]](?![A-Za-z0-9])", 'smiley'),
      (r"[-^x=~<>']_[-^x=~<>']", 'keep'),
      (r"\((?:[-^x=~<>'][_.]?[-^x=~<>']|[\^x=~<>']-[\^x=~<>'])\)", 'smiley'),
      (r'<<|>>|\\\*', 'keep'),  # << >> \*
      (r'[\ue000-\ue004]', 'vulgar'),
      (r'\ue005', 'currency'),  # A token of its own, unlike a written $.
      (r'\ue006', 'dash'),  # A long dash: a '--' of its own.
      (r'[\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089]+',
       'keep'),  # a run of superscript or subscript digits
  ]
  return [(re.compile(pattern), kind) for pattern, kind in rules]


_RULES_UNICODE = _compile_rules(_L, _LD, _RL, _A, _D)
# The same rules for ASCII text, where the jar's tables change nothing:
# plain character classes match faster.
_RULES_ASCII = _compile_rules('[A-Za-z]', '[A-Za-z0-9]', '[A-Za-z]',
                              '[A-Za-z0-9]', '[0-9]')
# HTML entities: &apos; and &amp; are read as ' and & everywhere (`it&apos;s`,
# `AT&amp;T`), the others are tokens (&nbsp; none).
_APOS_AMP_RE = re.compile(r'(?i)&(?:(apos)|amp);')
_ENTITIES = {'&lt;': '<', '&gt;': '>', '&quot;': "''", '&nbsp;': ''}
_SPACE_RE = re.compile(rf'[{_ANY_SPACE}]+')
# A run of letters before a space, a comma and a space, or the end.
_PLAIN_RE = re.compile(r'[A-Za-z]+(?=[ \t]|,[ \t]|,?\Z)')
# A caption made of letters, spaces, commas and one final period.
_FAST_RE = re.compile(r'[A-Za-z ,]*[A-Za-z](\.?) *\Z')
_FAST_UNSAFE_RE = re.compile(r'(?i)cannot|gonna|gotta|lemme|gimme|wanna')
# Every listed abbreviation, lower-cased (for the batch path's final-period
# test).
ABBREVIATIONS_LOWER = frozenset(
    w.lower() for w in _ABBREV1 | _ABBREV2 | _ABBREV3)
# The case forms of each class, measured with the jar (every case form of
# every listed abbreviation).
_ABBREV_RES = [re.compile('|'.join(_case_forms(w) for w in words))
               for words in (_ABBREV1, _ABBREV2, _ABBREV3)]


def _abbrev_class(word: str) -> int:
  """0: plain word, 1: ABBREV1, 2: ABBREV2, 3: ABBREV3 (before numbers)."""
  for kind, regex in enumerate(_ABBREV_RES, 1):
    if regex.fullmatch(word):
      return kind
  return 0


def _sentence_end_after_abbrev1(rest: str) -> bool:
  """The jar's SENTEND test on the text that follows an ABBREV1 token."""
  if len(rest) < 2:
    return True
  if rest[0] not in _ANY_SPACE:
    return False
  nxt = rest[1]
  return nxt in _ANY_SPACE or nxt.isupper() or nxt == '<'


def _sentence_starter_follows(rest: str) -> bool:
  """An acronym is sentence-final when a listed word follows it."""
  stripped = rest.lstrip(_ANY_SPACE)
  if len(stripped) == len(rest):
    return False
  end = len(stripped)
  for i, char in enumerate(stripped):
    if char in _ANY_SPACE:
      end = i
      break
  else:
    return False  # The listed word must itself be followed by a space.
  return stripped[:end] in _SENTENCE_STARTERS


class _Scanner:
  """Longest-match lexer over one text, with lookahead into what follows."""

  def __init__(self, text: str, following: str):
    self.text = text
    self.following = following  # Later lines of the stream, '\n'-joined.
    self.rules = _RULES_ASCII if text.isascii() else _RULES_UNICODE

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
      if plain and plain.group().lower() not in ASSIMILATIONS:
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
        if not _DELETED_CHAR_RE.match(text, pos):
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
      cut = end - ASSIMILATIONS[piece.lower()]
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
      kind = _abbrev_class(word)
      if kind == 1:
        out.append(piece)
        if _sentence_end_after_abbrev1(rest):
          out.append('.')
        return end
      if kind == 2:
        out.append(piece)
        return end
      if kind == 3:
        if re.match(rf'[{_ANY_SPACE}]?\d', rest):
          out.append(piece)
          return end
      if word.lower() in ASSIMILATIONS:
        return self.emit(out, start, end - 1, 'assim')  # can|not|.
      if len(word) > 1 or not word.isascii():
        out.append(word)  # A plain word and its full stop.
        return end - 1
    if _sentence_starter_follows(rest):
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
    if len(last) == 1 or _abbrev_class(last):
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
  text = _LONE_HYPHEN_RE.sub(' ', text)
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
