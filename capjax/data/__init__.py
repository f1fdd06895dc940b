"""Datasets (TFDS builders), vocabulary and grain input pipelines.

Modules:
  sources         `load_source(name, split)`: registry of datasets, preparing
                  them once to array_record, random access to one split.
  pipeline        `train_batches`, `eval_batches`, `references`, ...: grain
                  pipelines yielding fixed-shape numpy batches.
  vocab           `Vocab`: word ids (PAD=0, BOS, EOS, UNK), encode/decode,
                  JSON files with a fingerprint.
  shapes          the built-in dataset's TFDS builder, `caption_is_correct`
                  and `caption_accuracy`.
  shapes_scenes   its scenes: sampling, spatial relations, rendering.
  shapes_captions its caption language: generation, parsing, judging.
  flickr8k        Flickr8k from the official release files (manual_dir).
  karpathy        COCO / Flickr30k / Flickr8k from a Karpathy-split JSON.
  flickr30k       Flickr30k from results_20130124.token (flickr30k_token).
  iapr_tc12       IAPR TC-12 .eng annotations, split lists and its builder.
  simplicity      Wang's SIMPLIcity 1000 images in 10 classes.
  photo_builder   the shared base of the real-photo builders.
  images          checking image files, decoding image bytes.
  hashtags        tag sequences as captions: tags of shapes scenes and of
                  Flickr8k captions, HARRISON and tags.tsv readers.
  hashtag_builders  shapes_hashtags, flickr8k_hashtags, harrison, tag_folder.
  stopwords       English stop words (NLTK's when installed, else ours).
  caption_cleaning  seed 000's caption cleaning: stop words, letters-only
                  words, rare words removed.
  word_vectors    GloVe-format word vectors streamed for a vocabulary.
  text_corpus     plain-text corpora, characters, windows for the story LM.
"""
