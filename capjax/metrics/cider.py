"""CIDEr-D as the COCO toolkit computes it (its `Cider` scorer), vectorised.

For n = 1..4, each caption is a vector of tf-idf weights over its n-grams,
idf = log(num_documents) - log(max(1, df)). The score of a candidate against
one reference sums min(candidate, reference) * reference weights (clipping),
divides by both norms, and multiplies by exp(-(l_c - l_r)^2 / (2 sigma^2)),
where l is the caption's number of bigrams, as in the toolkit. Scores are
averaged over n and references and multiplied by 10.

Document frequencies come from the evaluated references (the toolkit's
default: one document per image) or from a `DocumentFrequency` built once on
another corpus, e.g. the training captions for self-critical training or
consensus reranking, and reused across calls.
"""

import dataclasses
import itertools
from typing import Sequence

import numpy as np

from capjax.metrics import ngrams

SIGMA = 6.0


@dataclasses.dataclass(frozen=True)
class DocumentFrequency:
  """N-gram document frequencies of a reference corpus, for reuse.

  Attributes:
    vocab: word -> id (1-based) the codes are written in.
    codes: [max_n] sorted int64 arrays, the codes of the n-grams of order n.
    counts: [max_n] float64 arrays, the number of documents holding each.
    num_documents: the number of documents (images) of the corpus.
  """
  vocab: dict[str, int]
  codes: list[np.ndarray]
  counts: list[np.ndarray]
  num_documents: int

  def lookup(self, table: ngrams.NgramTable) -> np.ndarray:
    """Document frequency of each n-gram of `table`, by its dense id.

    Args:
      table: an evaluation set's n-gram table.

    Returns:
      [num_ngrams] float64, 0 for n-grams this corpus never holds.
    """
    if table.max_n > len(self.codes):
      raise ValueError(f'document frequencies go up to {len(self.codes)}-'
                       f'grams but {table.max_n}-grams are scored.')
    first_group = np.flatnonzero(np.diff(table.group_ngram, prepend=-1))
    entry = table.group_start[first_group]
    order = table.entry_order[entry]
    words = _decode(table.entry_code[entry], order, table.vocab.base,
                    table.max_n)
    mapping = np.zeros(table.vocab.base, np.int64)
    for word, i in table.vocab.ids.items():
      mapping[i] = self.vocab.get(word, 0)  # 0: a word the corpus lacks
    ids = mapping[words]
    base = len(self.vocab) + 1
    result = np.zeros(first_group.shape[0])
    for n in range(table.max_n):
      at = np.flatnonzero(order == n)
      known_codes = self.codes[n]
      if not at.size or not known_codes.size:
        continue
      digits = ids[at, :n + 1]
      code = np.zeros(at.shape[0], np.int64)
      for k in range(n + 1):
        code = code * base + digits[:, k]
      where = np.minimum(np.searchsorted(known_codes, code),
                         known_codes.shape[0] - 1)
      hit = np.all(digits > 0, axis=1) & (known_codes[where] == code)
      result[at[hit]] = self.counts[n][where[hit]]
    return result


def _decode(codes: np.ndarray, order: np.ndarray, base: int,
            max_n: int) -> np.ndarray:
  """Word ids [num_ngrams, max_n] of n-gram codes; unused slots are 0."""
  out = np.zeros((codes.shape[0], max_n), np.int64)
  for n in range(max_n):
    at = np.flatnonzero(order == n)
    value = codes[at]
    for k in range(n, -1, -1):
      out[at, k] = value % base
      value = value // base
  return out


def document_frequency(references: Sequence[Sequence[Sequence[str]]],
                       max_n: int = ngrams.MAX_N) -> DocumentFrequency:
  """Counts, for each n-gram, the documents (images) whose references hold it.

  Args:
    references: [num_documents] lists of tokenized reference captions.
    max_n: the longest n-gram.

  Returns:
    A `DocumentFrequency` to pass to `compute` / `from_table` as `df`.
  """
  captions = ngrams.split_words(itertools.chain.from_iterable(references))
  per_doc = np.fromiter((len(refs) for refs in references), np.int64,
                        len(references))
  lengths = np.fromiter(map(len, captions), np.int64, len(captions))
  offsets = np.zeros(len(captions) + 1, np.int64)
  np.cumsum(lengths, out=offsets[1:])
  ids, vocab = ngrams.encode(list(itertools.chain.from_iterable(captions)))
  codes, order, caption, _ = ngrams.ngram_codes(ids, offsets, vocab.base,
                                                max_n)
  doc = np.repeat(np.arange(len(references)), per_doc)[caption]
  all_codes, all_counts = [], []
  for n in range(max_n):
    at = order == n
    # Distinct (code, document) pairs, then documents per code.
    pairs = np.unique(np.stack([codes[at], doc[at]], axis=1), axis=0)
    unique_codes, count = np.unique(pairs[:, 0], return_counts=True)
    all_codes.append(unique_codes)
    all_counts.append(count.astype(np.float64))
  return DocumentFrequency(vocab=vocab.ids, codes=all_codes,
                           counts=all_counts,
                           num_documents=len(references))


@dataclasses.dataclass(frozen=True)
class CiderResult:
  score: float  # mean over images
  per_image: np.ndarray  # [num_images] float64


def from_table(table: ngrams.NgramTable, df: DocumentFrequency | None = None,
               sigma: float = SIGMA) -> CiderResult:
  """CIDEr-D from a precomputed n-gram table (see `ngrams.build`)."""
  n = table.max_n
  num_images = table.num_images
  num_captions = table.lengths.shape[0]
  if df is None:
    has_reference = (table.group_reference_max > 0).astype(np.float64)
    ngram_df = np.bincount(table.group_ngram, weights=has_reference)
    log_documents = np.log(float(num_images))
  else:
    ngram_df = df.lookup(table)
    log_documents = np.log(float(df.num_documents))
  idf = log_documents - np.log(np.maximum(1.0, ngram_df))
  entry_idf = idf[table.group_ngram[table.entry_group]]
  weight = table.entry_count * entry_idf  # tf * idf
  slot = table.entry_caption * n + table.entry_order
  norm = np.sqrt(np.bincount(slot, weights=weight * weight,
                             minlength=num_captions * n))
  norm = norm.reshape(num_captions, n)

  # Reference entries of n-grams that the candidate also holds.
  cand_count = table.group_candidate_count[table.entry_group]
  is_ref = ~table.is_candidate[table.entry_caption] & (cand_count > 0)
  ref_weight = weight[is_ref]
  cand_weight = (cand_count * entry_idf)[is_ref]
  dot = np.bincount(slot[is_ref],
                    weights=np.minimum(cand_weight, ref_weight) * ref_weight,
                    minlength=num_captions * n).reshape(num_captions, n)

  ref = np.flatnonzero(~table.is_candidate)
  cand = table.first[table.caption_image[ref]]
  denom = norm[cand] * norm[ref]
  safe = np.where(denom != 0, denom, 1)
  val = np.where(denom != 0, dot[ref] / safe, dot[ref])
  bigrams = np.maximum(table.lengths - 1, 0).astype(np.float64)
  delta = bigrams[cand] - bigrams[ref]
  val = val * np.e ** (-(delta**2) / (2 * sigma**2))[:, None]
  per_ref = val.mean(axis=1)
  ref_starts = table.first[:-1] - np.arange(num_images)
  sums = np.add.reduceat(per_ref, ref_starts) if num_images else per_ref
  num_refs = np.diff(table.first) - 1
  per_image = sums / num_refs * 10.0
  score = float(np.mean(per_image)) if num_images else float('nan')
  return CiderResult(score=score, per_image=per_image)


def compute(candidates: Sequence[Sequence[str]],
            references: Sequence[Sequence[Sequence[str]]],
            df: DocumentFrequency | None = None,
            sigma: float = SIGMA) -> CiderResult:
  """CIDEr-D of tokenized captions.

  Args:
    candidates: [num_images] token lists.
    references: [num_images] lists of reference token lists.
    df: document frequencies of another corpus; by default they are counted
      on `references`, as the toolkit does.
    sigma: the length penalty's standard deviation.

  Returns:
    A `CiderResult`: corpus `score` and `per_image` [num_images].
  """
  return from_table(ngrams.build(candidates, references), df=df, sigma=sigma)
