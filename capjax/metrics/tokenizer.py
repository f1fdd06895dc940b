"""PTB-style caption tokenizer (first version; COCO parity is its own issue)."""

import re

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
  """Lower-cases `text` and returns its word tokens, punctuation dropped."""
  return _TOKEN_RE.findall(text.lower())
