"""Retrieval with a trained workdir: build an index, answer queries.

An index is the embeddings of a dataset split (its images and their
reference captions) or of a folder of image files, computed once and saved
in `<workdir>/index/<name>/` (`embeddings.npz` and `index.json`, both
written atomically). `index.json` records what the embeddings were built
from (the checkpoint and its step, the split or the folder and its files);
an index built from anything else (a run trained further since, the other
checkpoint, another folder of the same name, files added) is built again,
never used. A text query is embedded and scored against every
indexed image; an image query against every indexed sentence (the split's
captions, or the lines of a text file). The command-line front is
`capjax.retrieve`.
"""

import contextlib
import io
import json
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from capjax import atomic_write
from capjax import checkpointing
from capjax import retrieval_report
from capjax.data import images as images_lib
from capjax.data import vocab as vocab_lib
from capjax.evaluators import retrieval as retrieval_evaluator
from capjax.metrics import tokenizer
from capjax.models.retrieval import scoring
from capjax.tasks import retrieval as task

RETRIEVAL_TASK = 'retrieval'  # the config.task of the workdirs served here
INDEX_DIR = 'index'
INDEX_INFO = 'index.json'  # written last: an index without it is unfinished
EMBEDDINGS = 'embeddings.npz'
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp')
FILE_BATCH = 16  # image files embedded together (the last batch is padded)
UNKNOWN_NAMED = 5  # unknown words of a text query named in its warning


class Retriever:
  """A workdir's model, restored once, with its indexes."""

  def __init__(self, workdir: str, which: str = 'latest'):
    config, meta, params, step = checkpointing.restore_trained(workdir, which)
    kind = config.get('task', 'captioning')
    if kind != RETRIEVAL_TASK:
      raise ValueError(
          f'{workdir} holds a {kind!r} model (config.task), not a retrieval '
          'model: give --workdir a run of configs/retrieval/ (config.task '
          f'{RETRIEVAL_TASK}).')
    self.workdir = workdir
    self.which = which
    self.config = ml_collections.ConfigDict(config)
    self.meta = meta
    self.vocab = task.vocab_of(meta)
    self.model = task.create_model(self.config, meta)
    self.params = params
    self.step = step
    self._embed_images = jax.jit(self.model.embed_images)
    self._embed_texts = jax.jit(self.model.embed_texts)
    self._chunk = (self.config.retrieval.score_chunk
                   if self.config.retrieval.model == 'alignment' else 0)

  # ------------------------------------------------------------ indexes ---

  def index_dir(self, index: str) -> str:
    name = os.path.basename(os.path.normpath(index)) if os.path.isdir(
        index) else index
    return os.path.join(self.workdir, INDEX_DIR, name)

  def built_from(self, index: str) -> dict[str, Any]:
    """What an index of `index` must have been built from to be used.

    The checkpoint ('latest' or 'best') and its step, and the split name or
    the folder's absolute path and image files.
    """
    key = {'checkpoint': self.which, 'step': int(self.step)}
    if os.path.isdir(index):
      key['folder'] = os.path.abspath(index)
      key['files'] = [os.path.basename(p) for p in _image_files(index)]
    else:
      key['split'] = index
    return key

  def build(self, index: str) -> str:
    """Embeds a split name or an image folder; returns the index folder."""
    key = self.built_from(index)
    if os.path.isdir(index):
      data = self._embed_folder(index)
    else:
      data = self._embed_split(index)
    directory = self.index_dir(index)
    arrays, info = data
    info['built_from'] = key
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    # The old index.json goes first: a build killed before writing the new
    # one leaves no index.json, so the next query builds again instead of
    # pairing the old description with the new embeddings.
    with contextlib.suppress(FileNotFoundError):
      os.remove(os.path.join(directory, INDEX_INFO))
    atomic_write.write_bytes(os.path.join(directory, EMBEDDINGS),
                             buffer.getvalue())
    atomic_write.write_json(os.path.join(directory, INDEX_INFO), info)
    return directory

  def _embed_split(self, split: str):
    evaluator = retrieval_evaluator.Evaluator(
        self.config, task, self.model, self.meta, split)
    embedded = evaluator.embed_split(self.params)
    ids = [int(i) for i in embedded['image_ids']]
    references = [list(evaluator.source.captions[i]) for i in range(len(ids))]
    sentences = [self.vocab.decode(t) for t in embedded['tokens']]
    info = {'source': 'split', 'split': split, 'image_ids': ids,
            'references': references, 'sentences': sentences,
            'caption_image': embedded['caption_image'].tolist()}
    return ({'images': embedded['images'], 'texts': embedded['texts']},
            info)

  def _embed_folder(self, folder: str):
    """A folder's readable images; each unreadable one named and left out."""
    paths = _image_files(folder)
    if not paths:
      raise FileNotFoundError(
          f'No image files ({", ".join(IMAGE_EXTENSIONS)}) in {folder}: '
          'give a folder of images or a split name (test, validation).')
    embeddings, good, bad = self._embed_files(paths, skip_unreadable=True)
    for _, error in bad:
      logging.warning('%s: left out of the index of %s.', error, folder)
    if not good:
      raise ValueError(f'No readable image in {folder}: all {len(paths)} '
                       f'files are unreadable ({bad[0][1]}).')
    return ({'images': embeddings},
            {'source': 'folder', 'folder': os.path.abspath(folder),
             'image_ids': [os.path.basename(p) for p in good],
             'paths': good,
             'skipped': [os.path.basename(path) for path, _ in bad]})

  def load(self, index: str) -> tuple[dict[str, np.ndarray], dict]:
    """The saved index, built first when it is missing or out of date."""
    directory = self.index_dir(index)
    info = _read_info(os.path.join(directory, INDEX_INFO))
    if info is None or info.get('built_from') != self.built_from(index):
      self.build(index)
      info = _read_info(os.path.join(directory, INDEX_INFO))
    with np.load(os.path.join(directory, EMBEDDINGS)) as f:
      return dict(f), info

  # ----------------------------------------------------------- embedding ---

  def embed_image_files(self, paths: list[str]) -> np.ndarray:
    """[len(paths), D] embeddings; an unreadable file raises BadImageError."""
    return self._embed_files(paths)[0]

  def _embed_files(self, paths: list[str], skip_unreadable: bool = False):
    """`(embeddings [N, D], the N paths embedded, [(path, BadImageError)])`.

    Files are read and embedded FILE_BATCH at a time; with
    `skip_unreadable`, a file that does not decode is left out and returned
    with its error instead of raising it.
    """
    size = (self.config.dataset.image_size,) * 2
    out, good, bad = [], [], []
    for start in range(0, len(paths), FILE_BATCH):
      pictures = []
      for path in paths[start:start + FILE_BATCH]:
        try:
          pictures.append(images_lib.load_file(path, size))
        except images_lib.BadImageError as e:
          if not skip_unreadable:
            raise
          bad.append((path, e))
        else:
          good.append(path)
      if not pictures:
        continue
      chunk = np.stack(pictures)
      padded = np.zeros((FILE_BATCH,) + chunk.shape[1:], chunk.dtype)
      padded[:len(chunk)] = chunk
      out.append(np.asarray(
          self._embed_images(self.params, jnp.asarray(padded)))[:len(chunk)])
    return (np.concatenate(out) if out else np.zeros((0, 0), np.float32),
            good, bad)

  def embed_sentences(self, sentences: list[str]) -> np.ndarray:
    tokens = self.vocab.encode_batch(sentences, self.config.dataset.max_len)
    return np.asarray(self._embed_texts(self.params, jnp.asarray(tokens)))

  # ------------------------------------------------------------- queries ---

  def check_query(self, text: str) -> None:
    """Refuses a text without words; warns (one line) of unknown words.

    A word the vocabulary lacks is read as <unk>; when no word is known, the
    ranking is that of any sentence of as many unknown words.

    Raises:
      ValueError: the text has no words once tokenized (empty, blank or
        punctuation only).
    """
    words = list(dict.fromkeys(tokenizer.tokenize(text)))
    if not words:
      raise ValueError(f'The text query {text!r} has no words: give a '
                       'sentence, e.g. --text="a dog runs on the grass".')
    unknown = [w for w in words if self.vocab.word_id(w) == vocab_lib.UNK_ID]
    if not unknown:
      return
    named = ', '.join(repr(w) for w in unknown[:UNKNOWN_NAMED])
    if len(unknown) > UNKNOWN_NAMED:
      named += f' and {len(unknown) - UNKNOWN_NAMED} more'
    if len(unknown) == len(words):
      logging.warning(
          'No word of the text query is in the vocabulary of %s (%s): the '
          'ranking is the same for any text of as many unknown words.',
          self.workdir, named)
    else:
      logging.warning(
          'Words of the text query not in the vocabulary of %s are read '
          'as unknown: %s.', self.workdir, named)

  def text_query(self, index: str, text: str, top_k: int = 5
                 ) -> list[dict[str, Any]]:
    """The top-k indexed images for a sentence.

    The text is checked first (`check_query`): one without words is
    refused, unknown words are named in a warning.

    Returns:
      [{'rank', 'score', 'image_id', 'references'}] (references: the image's
      own captions when the index is a dataset split, else []).

    Raises:
      ValueError: the text has no words.
    """
    self.check_query(text)
    arrays, info = self.load(index)
    query = self.embed_sentences([text])
    scores = scoring.pairwise_scores(self.model, arrays['images'], query,
                                     chunk=self._chunk)[:, 0]
    top = np.argsort(-scores, kind='stable')[:top_k]
    references = info.get('references')
    return [{'rank': r + 1, 'score': float(scores[i]),
             'image_id': info['image_ids'][i],
             'references': references[i] if references else []}
            for r, i in enumerate(top)]

  def image_query(self, index: str, path: str, top_k: int = 5,
                  sentences_file: str | None = None) -> list[dict[str, Any]]:
    """The top-k sentences for an image file.

    Sentences are the indexed split's captions, or the non-empty lines of
    `sentences_file`.

    Returns:
      [{'rank', 'score', 'sentence', 'image_id', 'references'}]: image_id
      and references name the image the sentence describes (split indexes;
      None and [] for a sentences file).
    """
    query = self.embed_image_files([path])
    if sentences_file:
      with open(sentences_file, encoding='utf-8') as f:
        sentences = [line.strip() for line in f if line.strip()]
      if not sentences:
        raise ValueError(f'{sentences_file} has no sentences (one a line).')
      texts, owners, info = self.embed_sentences(sentences), None, {}
    else:
      arrays, info = self.load(index)
      if 'texts' not in arrays:
        raise ValueError(
            f'The index {index!r} holds images only: give --sentences=FILE '
            'or index a split (--index=test) for image queries.')
      texts, sentences = arrays['texts'], info['sentences']
      owners = info['caption_image']
    scores = scoring.pairwise_scores(self.model, query, texts,
                                     chunk=self._chunk)[0]
    top = np.argsort(-scores, kind='stable')[:top_k]
    out = []
    for r, i in enumerate(top):
      owner = None if owners is None else owners[i]
      out.append({
          'rank': r + 1, 'score': float(scores[i]), 'sentence': sentences[i],
          'image_id': None if owner is None else info['image_ids'][owner],
          'references': [] if owner is None else info['references'][owner]})
    return out

  def index_image(self, index: str, position: int) -> np.ndarray:
    """The picture of the `position`-th indexed image."""
    _, info = self.load(index)
    size = (self.config.dataset.image_size,) * 2
    if info['source'] == 'folder':
      return images_lib.load_file(info['paths'][position], size)
    return task.open_split(self.config, info['split']).image(position)

  def text_query_gallery(self, index: str, text: str,
                         results: list[dict[str, Any]], path: str) -> str:
    """Writes a PNG of a text query's top images; returns its path."""
    _, info = self.load(index)
    where = {image_id: i for i, image_id in enumerate(info['image_ids'])}
    pictures = [self.index_image(index, where[r['image_id']])
                for r in results]
    picture = retrieval_report.query_gallery(
        [(text, pictures, [r['score'] for r in results],
          [None] * len(results))], title=f'{self.workdir}: "{text}"')
    return retrieval_report.write_png(path, picture)


def _image_files(folder: str) -> list[str]:
  """The image files of a folder, sorted by name."""
  return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                if f.lower().endswith(IMAGE_EXTENSIONS))


def _read_info(path: str) -> dict[str, Any] | None:
  """A saved index.json, or None when there is none or it is unreadable."""
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (FileNotFoundError, json.JSONDecodeError):
    return None
