r"""The COCO toolkit's PTB jar's treatment of non-ASCII characters, measured.

The Stanford PTBTokenizer (CoreNLP 3.4.1) that the toolkit runs has its own
Unicode tables (older than Python's) and deletes every character that no
lexer rule matches: emoji and every other character outside the BMP (the
lexer sees UTF-16 halves), zero-width and other format characters, private
use, characters unassigned in its tables, and many symbols. `tokenizer` needs
to know, for each BMP character (from U+0080 on, but DELETED from U+0000):
  DELETED: the jar drops it (a token boundary, like a space);
  EXTRA_LETTERS: the jar keeps it inside a word, Python's `\w` does not
    (combining marks and others);
  NOT_WORD: Python's `\w` holds it, the jar makes it a token of its own
    (superscript digits and others);
  RULE_LETTERS: the EXTRA_LETTERS that are letters in the jar's other rules
    too (its apostrophe words and hyphenated things use JFlex's [:letter:],
    which has no combining marks: `don't\u0301` is `do n't \u0301`);
  MAPPED: the jar writes it as another token (cp1252 quotes, cents, ...).
The tables below were measured with `measure` (one jar run over every BMP
character in three contexts) and are checked against the jar by
tests/metrics_tokenizer_test.py. To measure again:

  python -m capjax.metrics.ptb_chars

Known differences from the jar, all rare in captions (the fuzz test in
tests/metrics_tokenizer_test.py keeps clear of them):
- two curly or cp1252 quotes in a row (`““`) are one token to the jar
  (e.g. '````'), which the toolkit keeps; capjax drops them as quotes;
- a curly apostrophe inside a kept token (`o’clock`, `rock ’n’ roll`, or a
  quote right before `'s`) stays curly in the jar's token; capjax writes `'`;
- a soft hyphen (U+00AD) after a hyphen (`a-\u00ad` is `a-` to the jar),
  right after a hyphenated word or alone before a period;
- captions holding a line break other than `\n` (`\r`, U+2028, ...) shift
  the toolkit's one-caption-per-line input; capjax reads them as spaces.
"""

import os
import subprocess
import sys
import tempfile

# Characters that end a line (the toolkit tokenizes one caption per line).
LINE_BREAKS = frozenset('\n\x0b\x0c\r\x85\u2028\u2029')
# The three lines that classify a character c.
CONTEXTS = ('a{c}b', '{c}', 'x {c} y')

# Ranges (hex, inclusive) measured from the 3.4.1 jar.
DELETED = """
0000-0009 000e-0020 007f 0081-0084 0086-0090 0095 0098-00a0 037f-0383 038b
038d 03a2 0482 0488-0489 0528-0530 0557-0558 0560 0588 058b-0590 05c8-05cf
05eb-05ef 05f5-05ff 0604-0605 060d-0613 061c-061d 065f 066b-066c 070e
07b2-07bf 07f9 07fb-07ff 0816-0819 081b-0823 0825-0827 0829-083f 0859-089f
08a1 08ad-08ff 093a-093b 094f 0956-0957 0970 0978 0980 0984 098d-098e
0991-0992 09a9 09b1 09b3-09b5 09ba-09bb 09c5-09c6 09c9-09ca 09cf-09d6
09d8-09db 09de 09e4-09e5 09f2-0a00 0a04 0a0b-0a0e 0a11-0a12 0a29 0a31 0a34
0a37 0a3a-0a3b 0a3d 0a50-0a58 0a5d 0a5f-0a65 0a70-0a71 0a75-0a80 0a84 0a8e
0a92 0aa9 0ab1 0ab4 0aba-0abb 0ad1-0adf 0ae2-0ae5 0af0-0b04 0b0d-0b0e
0b11-0b12 0b29 0b31 0b34 0b3a-0b3c 0b3e-0b5b 0b5e 0b62-0b65 0b70 0b72-0b81
0b84 0b8b-0b8d 0b91 0b96-0b98 0b9b 0b9d 0ba0-0ba2 0ba5-0ba7 0bab-0bad
0bba-0bbd 0bc3-0bc5 0bc9 0bce-0bcf 0bd1-0be5 0bf0-0c00 0c04 0c0d 0c11 0c29
0c34 0c3a-0c3c 0c57 0c5a-0c5f 0c62-0c65 0c70-0c84 0c8d 0c91 0ca9 0cb4
0cba-0cbc 0cbe-0cdd 0cdf 0ce2-0ce5 0cf0 0cf3-0d04 0d0d 0d11 0d3b-0d3c 0d45
0d49-0d4d 0d4f-0d5f 0d62-0d65 0d70-0d79 0d80-0d84 0d97-0d99 0db2 0dbc
0dbe-0dbf 0dc7-0e00 0e3b-0e3e 0e5a-0e80 0e83 0e85-0e86 0e89 0e8b-0e8c
0e8e-0e93 0e98 0ea0 0ea4 0ea6 0ea8-0ea9 0eac 0ebe-0ebf 0ec5 0ec7 0ece-0ecf
0eda-0edb 0ee0-0eff 0f01-0f1f 0f2a-0f3f 0f48 0f6d-0f87 0f8d-0fff 102b-103e
104a-104f 1056-1059 105e-1060 1062-1064 1067-106d 1071-1074 1082-108d 108f
109a-109f 10c6 10c8-10cc 10ce-10cf 10fb 1249 124e-124f 1257 1259 125e-125f
1289 128e-128f 12b1 12b6-12b7 12bf 12c1 12c6-12c7 12d7 1311 1316-1317
135b-137f 1390-139f 13f5-1400 166d-166e 1680 169b-169f 16eb-16ff 170d
1712-171f 1732-173f 1752-175f 176d 1771-177f 17b4-17d6 17d8-17db 17dd-17df
17ea-180f 181a-181f 1878-187f 18a9 18ab-18af 18f6-18ff 191d-1945 196e-196f
1975-197f 19ac-19c0 19c8-19cf 19da-19ff 1a17-1a1f 1a55-1a7f 1a8a-1a8f
1a9a-1aa6 1aa8-1b04 1b34-1b44 1b4c-1b4f 1b5a-1b82 1ba1-1bad 1be6-1bff
1c24-1c3f 1c4a-1c4c 1c7e-1ce8 1ced 1cf2-1cf4 1cf7-1cff 1dc0-1dff 1f16-1f17
1f1e-1f1f 1f46-1f47 1f4e-1f4f 1f58 1f5a 1f5c 1f5e 1f7e-1f7f 1fb5 1fbf-1fc1
1fc5 1fcd-1fcf 1fd4-1fd5 1fdc-1fdf 1fed-1ff1 1ff5 1ffd-200f 2012 2024-2025
2027 202a-202f 203c-203d 2043 2045-206f 2072-2073 208f 209d-209f 20a1-20a3
20a5-20ab 20ad-20ff 2150-2152 215f-2182 2185-218f 2c2f 2c5f 2ce5-2cea
2cef-2cf1 2cf4-2cff 2d26 2d28-2d2c 2d2e-2d2f 2d68-2d6e 2d70-2d7f 2d97-2d9f
2da7 2daf 2db7 2dbf 2dc7 2dcf 2dd7 2ddf-2e2e 2e30-3000 3003-3004 3007-3011
3013-3030 3036-303a 303d-3040 3097-309c 30a0 3100-3104 312e-3130 318f-319f
31bb-31ef 3200-33ff 4db6-4dff 9fcd-9fff a48d-a4cf a4fe-a4ff a60d-a60f
a62c-a63f a66f-a67e a698-a69f a6e6-a716 a720-a721 a789-a78a a78f a794-a79f
a7ab-a7f7 a802 a806 a80b a823-a83f a874-a881 a8b4-a8cf a8da-a8f1 a8f8-a8fa
a8fc-a8ff a926-a92f a947-a95f a97d-a983 a9b3-a9ce a9da-a9ff aa29-aa3f aa43
aa4c-aa4f aa5a-aa5f aa77-aa79 aa7b-aa7f aab0 aab2-aab4 aab7-aab8 aabe-aabf
aac1 aac3-aada aade-aadf aaeb-aaf1 aaf5-ab00 ab07-ab08 ab0f-ab10 ab17-ab1f
ab27 ab2f-abbf abe3-abef abfa-abff d7a4-d7af d7c7-d7ca d7fc-d7ff e000-f8ff
fa6e-fa6f fada-faff fb07-fb12 fb18-fb1c fb1e fb29 fb37 fb3d fb3f fb42 fb45
fbb2-fbd2 fd3e-fd4f fd90-fd91 fdc8-fdef fdfc-fe6f fe75 fefd-ff00 ffbf-ffc1
ffc8-ffc9 ffd0-ffd1 ffd8-ffd9 ffdd-ffdf ffe2-ffe4 ffe7-ffff
"""
EXTRA_LETTERS = """
00ad 02c2-02c5 02d2-02df 02e5-02eb 02ed 02ef-036f 0375 0378-0379 0384-0385
03f6 0483-0487 055a-055f 0591-05bd 05bf 05c1-05c2 05c4-05c5 05c7 0615-061a
064b-065e 0670 06d6-06e4 06e7-06ed 06fd-06fe 070f 0711 0730-074c 07a6-07b0
07eb-07f3 0900-0903 093c 093e-094e 0951-0955 0962-0963 0981-0983 09bc
09be-09c4 09c7-09c8 09cb-09cd 09d7 09e2-09e3 0a01-0a03 0a3c 0a3e-0a4f
0a81-0a83 0abc 0abe-0acf 0b82 0bbe-0bc2 0bc6-0bc8 0bca-0bcd 0c01-0c03
0c3e-0c56 0d3e-0d44 0d46-0d48 0e31 0e34-0e3a 0e47-0e4e 0eb1 0eb4-0ebc
0ec8-0ecd 1885-1886
"""
RULE_LETTERS = """
1885-1886
"""
NOT_WORD = """
00b2-00b3 00b9 00bc-00be 2070 2074-2079 2080-2089 2153-215e 2460-249b
24ea-24ff 2776-2793
"""
MAPPED = {
    0x0080: '$',
    0x0091: '`',
    0x0092: "'",
    0x0093: '``',
    0x0094: "''",
    0x0096: '--',
    0x0097: '--',
    0x00a2: 'cents',
    0x00a3: '#',
    0x00a4: '$',
    0x00ab: '``',
    0x00bb: "''",
    0x00bc: '1/4',
    0x00bd: '1/2',
    0x00be: '3/4',
    0x2013: '--',
    0x2014: '--',
    0x2015: '--',
    0x2018: '`',
    0x2019: "'",
    0x201b: '`',
    0x201c: '``',
    0x201d: "''",
    0x2026: '...',
    0x2039: '`',
    0x203a: "'",
    0x20a0: '$',
    0x20ac: '$',
    0x2153: '1/3',
    0x2154: '2/3',
}


def parse_ranges(text: str) -> list[tuple[int, int]]:
  """'0300-036f 0483' -> [(0x300, 0x36f), (0x483, 0x483)]."""
  out = []
  for item in text.split():
    start, _, end = item.partition('-')
    out.append((int(start, 16), int(end or start, 16)))
  return out


def regex_class(text: str) -> str:
  """The ranges as the inside of a regex character class."""
  return ''.join(
      f'\\u{start:04x}' if start == end else f'\\u{start:04x}-\\u{end:04x}'
      for start, end in parse_ranges(text))


def jar_lines(lines: list[str], jar: str) -> list[str]:
  """The jar's raw output lines (`-preserveLines -lowerCase`) for `lines`."""
  with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False,
                                   encoding='utf-8') as f:
    f.write('\n'.join(lines))
  try:
    out = subprocess.run(
        ['java', '-cp', jar, 'edu.stanford.nlp.process.PTBTokenizer',
         '-preserveLines', '-lowerCase', f.name],
        capture_output=True, check=True, timeout=600).stdout
  finally:
    os.remove(f.name)
  return [line.rstrip(' ') for line in
          out.decode('utf-8').split('\n')[:len(lines)]]


def _ranges(code_points: list[int]) -> str:
  spans = []
  for c in code_points:
    if spans and spans[-1][1] == c - 1:
      spans[-1][1] = c
    else:
      spans.append([c, c])
  items = [f'{a:04x}' if a == b else f'{a:04x}-{b:04x}' for a, b in spans]
  lines, line = [], ''
  for item in items:
    if len(line) + len(item) + 1 > 78:
      lines.append(line)
      line = ''
    line = f'{line} {item}' if line else item
  return '\n'.join(lines + [line])


def measure(jar: str) -> dict:
  """Classifies every BMP character by running the jar once.

  ASCII characters other than the deleted controls are left to the lexer's
  rules, so only DELETED lists any.

  Args:
    jar: the path of stanford-corenlp-3.4.1.jar.

  Returns:
    {'DELETED', 'EXTRA_LETTERS', 'RULE_LETTERS', 'NOT_WORD': range text,
    'MAPPED': dict}.
  """
  import re  # pylint: disable=g-import-not-at-top
  word = re.compile(r'[^\W_]')
  code_points = [c for c in range(0x10000)
                 if not 0xd800 <= c <= 0xdfff and chr(c) not in LINE_BREAKS]
  out = jar_lines([context.format(c=chr(c)) for c in code_points
                   for context in CONTEXTS], jar)
  deleted, extra, not_word, mapped = [], [], [], {}
  for i, c in enumerate(code_points):
    in_word, alone, _ = out[3 * i:3 * i + 3]
    char = chr(c)
    if not alone:
      if in_word == 'a b':
        deleted.append(c)
      continue
    if c < 0x80:
      continue
    joined = ' ' not in in_word
    if joined and not word.match(char):
      extra.append(c)
    if not joined and word.match(char):
      not_word.append(c)
    if not joined and alone != char.lower():
      mapped[c] = alone
  # `n'` and two letters is one apostrophe word (`n'ta`) when c is one of
  # the letters of the jar's other rules.
  apostrophe = jar_lines([f"n'a{chr(c)}" for c in extra], jar)
  rule_letters = [c for c, line in zip(extra, apostrophe) if ' ' not in line]
  return {'DELETED': _ranges(deleted), 'EXTRA_LETTERS': _ranges(extra),
          'RULE_LETTERS': _ranges(rule_letters),
          'NOT_WORD': _ranges(not_word), 'MAPPED': mapped}


def main() -> None:
  from capjax.metrics import java  # pylint: disable=g-import-not-at-top
  jar = java.find_jar(None, 'tokenizer', 'stanford-corenlp-3.4.1.jar',
                      what='PTB tokenizer')
  tables = measure(jar)
  for name in ('DELETED', 'EXTRA_LETTERS', 'RULE_LETTERS', 'NOT_WORD'):
    print(f'{name} = """\n{tables[name]}\n"""')
  print('MAPPED = {')
  for c, token in sorted(tables['MAPPED'].items()):
    print(f'    0x{c:04x}: {token!r},')
  print('}')


if __name__ == '__main__':
  sys.exit(main())
