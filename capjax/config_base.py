"""Defaults shared by the experiment configs in `configs/`, and arg parsing.

A config file's `get_config(arg)` starts from `base_config()`, sets what its
experiment needs, and applies `arg`: a comma-separated list of variant names
and `key=value` pairs
(`configs/captioning/shapes.py:tiny,model=merge,cell=gru`).
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  """Every field the library reads, with its default."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # parameter init, dropout and data order all derive from it
  # what is learnt: a key of capjax.tasks.REGISTRY (captioning |
  # language_model | multilabel | retrieval)
  c.task = 'captioning'

  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = 'shapes'  # a key of capjax.data.pipeline's registry
  c.dataset.builder_config = 'default'  # TFDS builder config of the dataset
  # TFDS data dir ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.dataset.data_dir = ''
  c.dataset.manual_dir = ''  # where a real dataset's files already are
  c.dataset.image_size = 64  # images are resized to this square size
  c.dataset.max_len = 20  # caption tokens, EOS included; longer ones are cut
  c.dataset.min_count = 1  # words seen fewer times in training become UNK
  c.dataset.captions_per_image = 5  # references kept per evaluation image
  c.dataset.train_captions_per_image = 1  # captions per image in a train batch

  c.model = ml_collections.ConfigDict()
  # show_tell | merge | soft_attention | mrnn
  c.model.decoder = 'soft_attention'
  c.model.cell = 'lstm'  # lstm | gru
  c.model.embed_dim = 128  # word embedding size
  c.model.hidden_dim = 256  # recurrent state size
  c.model.attention_dim = 128  # soft attention MLP size
  c.model.merge = 'add'  # merge decoder: add | concat image and RNN output
  c.model.dropout = 0.0  # dropout on embeddings and RNN outputs
  c.model.fused = True  # fused recurrence (hand-written backward pass)
  c.model.unroll = 1  # time steps per scan iteration
  c.model.num_layers = 1  # language_model: stacked recurrent layers
  c.model.blind = False  # zero the images: the no-vision baseline
  c.model.encoder = ml_collections.ConfigDict()
  # Fields other than `name` go to the chosen encoder when it has them.
  c.model.encoder.name = 'small_cnn'  # small_cnn | identity
  c.model.encoder.channels = (32, 64, 128)  # small_cnn: 3x3 conv widths
  c.model.encoder.strides = (2, 2, 2)  # small_cnn: strides (grid = size / prod)
  c.model.encoder.global_dim = 256  # small_cnn: global image feature size
  c.model.encoder.coords = True  # small_cnn: x/y coordinate channels in and out
  c.model.encoder.global_pool = 'flatten'  # small_cnn: flatten | mean
  c.model.encoder.norm = False  # small_cnn: LayerNorm after each conv

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'adam'  # adam | adamw | sgd | rmsprop
  c.optimizer.learning_rate = 2e-3  # peak learning rate
  # constant | cosine | warmup_cosine | linear
  c.optimizer.schedule = 'warmup_cosine'
  c.optimizer.warmup_steps = 100  # linear warm-up steps
  c.optimizer.end_factor = 0.05  # final learning rate / peak
  c.optimizer.b1 = 0.9  # Adam beta1
  c.optimizer.b2 = 0.999  # Adam beta2
  c.optimizer.eps = 1e-8  # Adam / RMSProp epsilon
  c.optimizer.weight_decay = 1e-4  # adamw only
  c.optimizer.momentum = 0.0  # sgd / rmsprop momentum
  c.optimizer.grad_clip_norm = 5.0  # global-norm clipping (0 = off)

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 64  # global batch (split over devices and hosts)
  c.train.num_steps = 2000  # optimizer steps
  c.train.log_every = 50  # steps between log lines and summaries
  c.train.checkpoint_every = 500  # steps between checkpoints
  c.train.keep_checkpoints = 2  # latest checkpoints kept
  c.train.validate_every = 0  # steps between validations (0 = at the end)
  # validation metric of the best checkpoint ('' = none)
  c.train.best_metric = 'CIDEr'
  c.train.attention_lambda = 1.0  # doubly stochastic attention regulariser
  c.train.prefetch = 2  # batches prepared ahead by the input thread

  c.eval = ml_collections.ConfigDict()
  c.eval.splits = ('test',)  # splits evaluated at the end of training
  # names in capjax.evaluators.REGISTRY (empty: the task's defaults)
  c.eval.evaluators = ()
  c.eval.validation_split = 'validation'  # split for best-checkpoint choice
  c.eval.batch_size = 100  # images per evaluation batch (last one padded)
  c.eval.decode = 'greedy'  # greedy | beam | sample | diverse_beam
  c.eval.beam_size = 3  # beam width for beam / diverse_beam
  c.eval.num_groups = 1  # diverse_beam groups
  c.eval.diversity_penalty = 0.5  # diverse_beam penalty
  # alpha of the length normaliser (0 = sum of log-probs)
  c.eval.length_penalty = 0.0
  c.eval.length_norm = 'gnmt'  # gnmt: ((5 + len) / 6)^alpha | power: len^alpha
  c.eval.temperature = 1.0  # sample: softmax temperature
  c.eval.top_k = 0  # sample: keep the k most probable words (0 = all)
  c.eval.top_p = 1.0  # sample: nucleus mass (1 = all)
  c.eval.suppress_unk = False  # never emit UNK
  c.eval.no_repeat = False  # never emit the word just emitted
  c.eval.block_trigrams = False  # never repeat a trigram
  c.eval.no_end_after = ()  # words a caption may not end on, e.g. ('a', 'the')
  c.eval.min_len = 0  # fewest words before EOS
  c.eval.metrics = ('bleu', 'rouge', 'cider')  # add 'meteor' / 'spice' (Java)
  c.eval.max_decode_len = 0  # 0 = dataset.max_len
  c.eval.gallery_size = 16  # images in the gallery
  c.eval.max_examples = 0  # evaluate only the first N images (0 = all)

  # --- Hashtags and stories (issue 13): tasks multilabel, language_model ---
  c.dataset.corpus = ''  # language_model: .txt file or folder ('' = Flickr8k)
  c.dataset.window = 100  # language_model: characters per training window
  c.dataset.heldout_chars = 20_000  # language_model: held-out text (bits/char)
  c.model.tag_hidden_dim = 0  # multilabel: hidden layer before tags (0 = none)
  c.train.carry_state = False  # language_model: carry state across windows
  c.eval.tag_k = 3  # hashtags: P/R/F1@k and the classifier's top k
  c.eval.tag_threshold = 0.5  # multilabel: tags above this probability
  c.eval.no_repeat_any = False  # never emit a token twice (no tag twice)
  c.eval.story_length = 500  # language_model: characters per story
  c.eval.story_seed = '#dog '  # language_model: text that primes a story
  # --- end of issue 13 ---
  # --- The papers' other datasets (issue 11 item 5): an eval split
  # 'NAME:SPLIT' (e.g. 'simplicity:test' in eval.splits) is SPLIT of the
  # registered dataset NAME, scored with the training vocabulary ---
  c.dataset.eval_builder_config = ''  # its builder config ('' = its default)
  c.dataset.eval_manual_dir = ''  # folder of its files (to prepare it once)
  # --- end of the papers' other datasets ---

  c.parallel = ml_collections.ConfigDict()
  c.parallel.mode = 'jit'  # jit (sharded mesh) | pmap
  c.parallel.num_devices = 0  # devices to use (0 = all)

  # --- Joint-embedding retrieval (issue 14: task and evaluator 'retrieval').
  c.retrieval = ml_collections.ConfigDict()
  c.retrieval.model = 'common_space'  # alignment | common_space
  c.retrieval.embed_dim = 128  # size of the joint space
  c.retrieval.text_encoder = 'bilstm'  # common_space: lstm | bilstm
  c.retrieval.num_layers = 1  # common_space: stacked (Bi)LSTM layers
  c.retrieval.pooling = 'last'  # common_space: last states | mean over words
  c.retrieval.loss = 'xent'  # xent | hinge (sum) | hardest (VSE++)
  c.retrieval.margin = 0.2  # hinge margin (1.0 for the alignment score)
  c.retrieval.logit_scale = 10.0  # xent: scores are multiplied by this
  c.retrieval.folds = 0  # evaluator: also report N-fold means (COCO 1K: 5)
  c.retrieval.class_k = 10  # evaluator: K of the per-class P/R@K
  c.retrieval.score_chunk = 16  # alignment: images scored per program step
  # --- m-RNN (issue 12): the 'mrnn' decoder, Eq. 6's L2, its evaluators ---
  c.model.mrnn = ml_collections.ConfigDict()
  # mrnn | NoEmbInput | OneLayerEmb | EmbOneInput | VisualInRnn |
  # VisualInRnn-both | VisualInRnn-both-shared | RNN-Base | mrnn-shared
  c.model.mrnn.variant = 'mrnn'
  c.model.mrnn.multimodal_dim = 512  # the multimodal layer's units
  # L2 coefficient added to the gradient before the optimizer (lambda*theta:
  # Eq. 6's term with lambda_theta = l2 / 2); 0 = off
  c.optimizer.l2 = 0.0
  c.eval.likelihood = ml_collections.ConfigDict()
  c.eval.likelihood.split = 'test'  # split ranked by likelihood retrieval
  c.eval.likelihood.num_images = 1000  # first N images of it (0 = all)
  c.eval.likelihood.prior_images = 128  # training images averaged for P(s)
  c.eval.likelihood.folds = 1  # COCO 1K protocol: 5 on the 5K test set
  # image-sentence pairs per program step (the packed m-RNN path takes this
  # times the caption length in word positions: the same memory)
  c.eval.likelihood.chunk = 4096
  c.eval.consensus = ml_collections.ConfigDict()
  c.eval.consensus.n_best = 10  # beam hypotheses reranked per image
  c.eval.consensus.k = 60  # nearest training images
  c.eval.consensus.m_bleu = 175  # largest similarities summed (BLEU)
  c.eval.consensus.m_cider = 125  # largest similarities summed (CIDEr)
  c.eval.consensus.space = 'refined'  # refined g2(V_I I) | raw features
  c.eval.consensus.train_images = 0  # training images searched (0 = all)
  # --- end m-RNN ---
  # --- Mixed precision and the padding-free output layer (issue 15) ---
  # Matmul compute dtype: float32 | bfloat16 (bfloat16 inputs, float32
  # accumulation; parameters, optimizer state, state, softmax, loss stay f32).
  c.model.dtype = 'float32'
  # Share of a batch's batch*time positions the output layer computes in the
  # loss (rows of real tokens only, rounded up to a multiple of 8); a batch
  # with more real tokens takes the padded path. 0 = always all positions.
  c.model.output_capacity = 0.0
  # --- Seed 000's text preprocessing and GloVe (issue 11, branch seed000) ---
  # Remove English stop words from captions before the vocabulary and the
  # targets (NLTK's list when its corpus is installed, else capjax's).
  c.dataset.stop_words = False
  # Keep only words of 2+ letters (punctuation inside a word removed, words
  # with digits dropped): the cleaning seed 000's own figures match.
  c.dataset.letter_words = False
  # Evaluation references cleaned like the captions (True) or raw, as the
  # COCO toolkit scores them (False).
  c.dataset.clean_references = False
  # Words seen fewer than min_count times: 'unk' (encoded as UNK) | 'drop'
  # (removed from the captions, as seed 000 does).
  c.dataset.rare_words = 'unk'
  # GloVe-format text file ('word v1 ... vd' per line) whose vectors start
  # the word embedding ('' = random init; missing words stay random).
  c.model.embedding_init = ''
  # False: the word embedding gets no update and no optimizer state.
  c.model.embedding_trainable = True
  # --- end seed 000 ---

  # --- Converted CNN weights and fine-tuning (issue 11, branch finetune) ---
  # Encoder checkpoint dir from `python -m capjax.convert_weights` loaded as
  # the encoder's initial params; its arch must equal model.encoder.name and
  # its fields (preprocessing, pooling) replace the config's ('' = random).
  c.model.encoder.weights = ''
  # False: the encoder is frozen (no gradient through it, no optimizer state;
  # configs with ImageNet CNNs set it); batch norm never updates its
  # statistics either way (it is folded into a fixed scale and bias).
  c.model.encoder.trainable = True
  # Fine-tuned encoder's learning rate = this x the shared schedule.
  c.optimizer.encoder_lr_multiplier = 1.0
  # --- end converted weights and fine-tuning ---

  # --- Features datasets (issue 11): training on precomputed CNN features,
  # and `python -m capjax.extract_features --config=... --workdir=DIR` ---
  # a features folder (DIR/features of extract_features --config) whose
  # vectors replace the pixels ('' = pixels); needs model.encoder.name
  # 'identity'
  c.dataset.features = ''
  c.dataset.feature_grid = False  # train on the grid [L, D], not global [D]
  c.features = ml_collections.ConfigDict()
  # encoder checkpoint directory (python -m capjax.convert_weights)
  c.features.weights = ''
  c.features.crop = 'squash'  # squash | center | ten (m-RNN's 10-crop mean)
  c.features.size = 0  # input side (0: the checkpoint's, 224 or 299)
  c.features.short_side = 0  # shorter side before cropping (0: 256 at 224)
  c.features.grid = False  # also store the grid [L, D] (large on COCO)
  c.features.dtype = 'float32'  # compute: float32 | bfloat16
  c.features.store_dtype = 'float16'  # stored: float16 | float32
  c.features.batch = 32  # images per step (rounded up to the devices)
  c.features.chunk = 512  # images between saved progress marks (resume)
  c.features.splits = ()  # splits to extract (empty: every split)
  # --- end of features datasets ---
  return c


def parse_arg(arg: str | None) -> tuple[set[str], dict[str, str]]:
  """'tiny,model=merge' -> ({'tiny'}, {'model': 'merge'})."""
  flags, values = set(), {}
  for part in (arg or '').split(','):
    part = part.strip()
    if not part:
      continue
    if '=' in part:
      key, value = part.split('=', 1)
      values[key.strip()] = value.strip()
    else:
      flags.add(part)
  return flags, values


def check_known(kind: str, given, known) -> None:
  """Raises a one-line error for a variant name the config does not know."""
  unknown = sorted(set(given) - set(known))
  if unknown:
    raise ValueError(
        f'Unknown config {kind} {unknown}: known ones are {sorted(known)}.'
    )
