"""The PTB jar's lexer rules as longest-match regexes, measured against it.

The Stanford PTBTokenizer (CoreNLP 3.4.1) that the COCO toolkit runs is a
JFlex lexer; these are its rules that matter for captions, each written as a
regex with its kind (what `tokenizer` emits for it), the abbreviations and
the lookaheads its rules take, all measured with the jar (the tests compare
them with it). Characters follow the jar's own tables (`ptb_chars`).
"""

import re

from capjax.metrics import ptb_chars

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


# The ABBREV1 rule's words (see `abbrev_class`).
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
# Spaces to the jar but for its 'n and fraction rules (deleted too); all its
# spaces.
_WIDE_SPACE = ''.join(map(chr, [*range(0x2000, 0x200b), 0x3000]))
ANY_SPACE = _SPACE + _WIDE_SPACE
# Words the lexer splits, and the length of their second part.
ASSIMILATIONS = {
    'cannot': 3, 'gonna': 2, 'gotta': 2, 'lemme': 2, 'gimme': 2, 'wanna': 2,
}
# What the jar cannot lex and drops: its DELETED table (ASCII controls,
# spaces and more) and every character outside the BMP (it lexes UTF-16
# halves). They stay in the text, as in the jar: no letter or digit of a
# rule, a character of a rule that takes anything (`[^\s...]`), not a space
# to a lookahead, and dropped where no rule takes them.
_DELETED = (ptb_chars.regex_class(ptb_chars.DELETED) +
            '\U00010000-\U0010ffff')
DELETED_CHAR_RE = re.compile(f'[{_DELETED}]')
# Hyphens the jar keeps only between the letters or digits of a THING
# (`t\u2010shirt`) and drops elsewhere.
WORD_HYPHENS = '\u058a\u2010\u2011'
_EXTRA_LETTERS = ptb_chars.regex_class(ptb_chars.EXTRA_LETTERS)
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
_NUM_SEP = '[.:,\u00ad\u066b\u066c]'
_CLITIC = r'(?:[msdMSD]|[rR][eE]|[vV][eE]|[lL][lL])'
# The jar's file name extensions (measured: every extension of up to four
# letters or digits, and a few longer ones tried).
_FILE_EXTENSIONS = '|'.join(sorted(
    'c h x gz pl ps py bat bmp cgi cpp dll doc exe gif htm jar jpg mov mp3 '
    'pdf php png ppt sql tar txt wav xml zip docx html java jpeg class'.split(),
    key=lambda e: (-len(e), e)))


# The lexer's token classes (regex, kind, characters one of which a match
# holds, or None); the longest match wins and ties go to the earlier entry,
# as in JFlex. Lookaheads after clitics and some rules are ASCII-only, as in
# the jar.
_SCRIPT_DIGITS = ''.join(map(chr, [0xb2, 0xb3, 0xb9, 0x2070,
                                   *range(0x2074, 0x207a),
                                   *range(0x2080, 0x208a)]))
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
    [(compiled rule, kind, frozenset of required characters or None)], in
    priority order.
  """
  # A number's separators include a soft hyphen and the Arabic ones.
  num = rf'(?:{d}*(?:{_NUM_SEP}{d}+)+|{d}+(?:{_NUM_SEP}{d}+)*)'
  # A hyphenated thing with dots and commas (ASCII only in the jar).
  hthing = (r'[A-Za-z0-9][A-Za-z0-9.,]*'
            r'(?:-(?:[A-Za-z](?:\.[A-Za-z])+\.|[A-Za-z0-9]+))+')
  thing = (rf"(?:[dDoOlL]['`]{a})?{a}+"
           rf"(?:[-_{WORD_HYPHENS}](?:[dDoOlL]['`]{a})?{a}+)*")
  rules = [
      # SGML tags (spaces written as no-break spaces).
      (r'<[A-Za-z][-\w:.]*(?: +[A-Za-z][-\w:.]*(?:="[^"]*"|=\'[^\']*\')?)*'
       r' *\/? *>|<\/[A-Za-z][-\w:.]* *>|<[!?][-A-Za-z][^>\r\n]*>', 'tag', '<'),
      # URL and e-mail (no dot needed); their characters are any but the
      # jar's few spaces and brackets.
      (r'https?:\/\/[^ \t\n\f\r"<>|(){}]+[^ \t\n\f\r"<>|(){}.!?,-]',
       'keep', ':'),
      (r'<?[A-Za-z0-9][^ \t\n\f\r"<>|(){}\u00a0]*@'
       r'(?:[^ \t\n\f\r"<>|(){}.\u00a0]+\.)*[^ \t\n\f\r"<>|(){}.\u00a0]+>?',
       'keep', '@'),
      (r'(?i:cannot|gonna|gotta|lemme|gimme|wanna)', 'assim'),
      # Trailing context (after `tok`) counts in the match's length but is
      # lexed again, whatever follows it.
      (r"(?P<tok>'[tT])(?i:is|was)", 'keep', "'"),  # 't|is
      (rf"(?P<tok>{l}{ld}*(?:[.!?]{l}{ld}*)*)'{_CLITIC}", 'keep', "'"),
      (r"(?P<tok>[A-Za-z]*[A-MO-Za-mo-z])(?i:n['`]t)", 'keep', "'`"),
      (rf'{l}{ld}*(?:[.!?]{l}{ld}*)*', 'keep'),  # WORD
      # ABBREV1 with two characters of trailing context (the end of the line
      # counts as two): `etc.x` is `etc. x` but `etc.ab` is one word.
      (rf'(?P<tok>(?:{_ABBREV1_RE})\.)(?s:..|.?\Z)', 'abbrev1', '.'),
      # A file name (`1.jpg`, `img.2.x`) before a space, . , ! ? or the end.
      (rf'{ld}+(?:\.{ld}+)*\.(?i:{_FILE_EXTENSIONS})'
       rf'(?=[.,!?{ANY_SPACE}]|\Z)', 'keep', '.'),
      # A word or hyphenated thing keeps its period before , ; or : (which is
      # lexed again).
      (rf"(?P<tok>(?:{l}{ld}*(?:[.!?]{l}{ld}*)*|{thing}|{hthing}"
       rf"|[A-Z]+(?:[+&][A-Z]+)+)\.)[,;:]", 'keep', '.'),
      # THING: letters and digits joined by -, _ or a Unicode hyphen (a
      # signed or dotted number is not one of its parts).
      (thing, 'keep'),
      (r'[A-Z]+(?:[+&][A-Z]+)+', 'keep', '+&'),  # AT&T, T+A
      (r'(?i:c\+\+|[cf]#)', 'keep', '+#'),  # programming languages
      (r'[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}'
       r'(?:\\?\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}',
       'keep', '/'),  # and/or (ASCII only in the jar)
      (hthing, 'keep', '-'),
      (rf'(?:{d}{{1,4}}[- \u00a0])?{d}{{1,4}}(?:\\?\/|\u2044){d}{{1,4}}',
       'frac', '/\u2044'),
      (rf"[-+]?{num}", 'keep'),  # NUMBER
      (r"(?i:n['`]t)", 'keep', "'`"),
      (rf"'{_CLITIC}(?![A-Za-z])", 'keep', "'"),
      # Words the lexer keeps whole despite an apostrophe, one rule per
      # form so that the longest wins: 'n and '99 only before a space or
      # the end of the line (to 'n, U+2000 is no space), y' only before a
      # letter.
      (rf"(?i:'n'|'n(?=[{_SPACE}]|\Z)|dunkin'|somethin'|ol'|'em|'till?"
       rf"|'cause|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l|o['`]o)",
       'keep', "'`"),
      (rf"'{d}{d}(?=[{ANY_SPACE}]|\Z)|'[2-9]0s|[yY]'(?={rl})|[lLdDjJ]'",
       'keep', "'"),
      (rf"[A-HJ-XZn]['`]{rl}{{2,}}", 'keep', "'`"),
      (rf"{rl}+[aeiouyAEIOUY]['`][aeiouA-Z]{rl}*", 'keep', "'`"),
      (r'[A-Za-z](?:\.[A-Za-z])*\.', 'acronym', '.'),  # ASCII only
      (r'\.\.\.+', 'ellipsis', '.'),
      (r'--+', 'dashes', '-'),
      (r'[?!]+', 'keep', '?!'),
      (r'"|``|\'\'|`|\'', 'quote', '"\'`'),
      (rf'#{l}+', 'keep', '#'),  # hashtag
      (r'@[A-Za-z_][A-Za-z_0-9]*', 'keep', '@'),
      (r'[A-Z]*\$|#+|@+|_+|\*+', 'keep', '$#@_*'),
      (rf'{l}+\.', 'acronym', '.'),
      (r'(?i:&(?:lt|gt|quot|nbsp);)', 'entity', '&'),
      (rf'&#{d}+;', 'keep', '&'),
      (r'[()\[\]{}]', 'bracket', '()[]{}'),
      # Smileys: a brow, eyes, a nose and a mouth (round brackets written as
      # -LRB- -RRB-), and Asian smileys.
      (r"[<>]?[:;=][-o*']?[()DPdpO\\{@|\[\]](?![A-Za-z0-9])", 'smiley',
       ':;='),
      (r"[-^x=~<>']_[-^x=~<>']", 'keep', '_'),
      (r"\((?:[-^x=~<>'][_.]?[-^x=~<>']|[\^x=~<>']-[\^x=~<>'])\)", 'smiley',
       '('),
      (r'<<|>>|\\\*', 'keep', '<>\\'),  # << >> \*
      (r'[\ue000-\ue004]', 'vulgar', '\ue000\ue001\ue002\ue003\ue004'),
      (r'\ue005', 'currency', '\ue005'),  # A token of its own, not US$.
      (r'\ue006', 'dash', '\ue006'),  # A long dash: a '--' of its own.
      (r'[\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089]+',
       'keep', _SCRIPT_DIGITS),  # a run of superscript or subscript digits
  ]
  return [(re.compile(rule[0]), rule[1],
           frozenset(rule[2]) if len(rule) > 2 else None) for rule in rules]


RULES_UNICODE = _compile_rules(_L, _LD, _RL, _A, _D)
# The same rules for ASCII text, where the jar's tables change nothing:
# plain character classes match faster.
RULES_ASCII = _compile_rules('[A-Za-z]', '[A-Za-z0-9]', '[A-Za-z]',
                             '[A-Za-z0-9]', '[0-9]')

# Every listed abbreviation, lower-cased (for the batch path's final-period
# test).
ABBREVIATIONS_LOWER = frozenset(
    w.lower() for w in _ABBREV1 | _ABBREV2 | _ABBREV3)
# The case forms of each class, measured with the jar (every case form of
# every listed abbreviation).
_ABBREV_RES = [re.compile('|'.join(_case_forms(w) for w in words))
               for words in (_ABBREV1, _ABBREV2, _ABBREV3)]


def abbrev_class(word: str) -> int:
  """0: plain word, 1: ABBREV1, 2: ABBREV2, 3: ABBREV3 (before numbers)."""
  for kind, regex in enumerate(_ABBREV_RES, 1):
    if regex.fullmatch(word):
      return kind
  return 0


def sentence_end_after_abbrev1(rest: str) -> bool:
  """The jar's SENTEND test on the text that follows an ABBREV1 token."""
  if len(rest) < 2:
    return True
  if rest[0] not in ANY_SPACE:
    return False
  nxt = rest[1]
  return nxt in ANY_SPACE or nxt.isupper() or nxt == '<'


def sentence_starter_follows(rest: str) -> bool:
  """An acronym is sentence-final when a listed word follows it."""
  stripped = rest.lstrip(ANY_SPACE)
  if len(stripped) == len(rest):
    return False
  end = len(stripped)
  for i, char in enumerate(stripped):
    if char in ANY_SPACE:
      end = i
      break
  else:
    return False  # The listed word must itself be followed by a space.
  return stripped[:end] in _SENTENCE_STARTERS
