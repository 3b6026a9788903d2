"""Configuration of reformer-ko models (Korean Reformer language models over reformer-pytorch)."""

import math

from transformers import PreTrainedConfig

POSITION_EMBEDDING_TYPES = ("rotary", "axial", "absolute")
NO_ATTENTION_WEIGHTS = (
    "reformer-ko models have no attention weights to return: LSH attention attends within hash buckets and never "
    "builds the sequence x sequence matrix; leave output_attentions unset (False)."
)

# The integer fields and the least value of each. embedding_size and num_buckets may also be None (computed).
INTEGER_FIELDS = dict(
    vocab_size=1,
    hidden_size=1,
    num_hidden_layers=1,
    num_attention_heads=1,
    embedding_size=1,
    max_position_embeddings=1,
    type_vocab_size=0,
    bucket_size=1,
    num_buckets=2,
    num_hashes=1,
    ff_mult=1,
    ff_chunks=1,
    attn_chunks=1,
    reverse_thres=0,
)
OPTIONAL_FIELDS = ("embedding_size", "num_buckets")

PRESETS = {
    # The original project's BERT-style masked LM.
    "mlm-small": dict(
        vocab_size=22000,
        hidden_size=512,
        num_hidden_layers=6,
        num_attention_heads=8,
        max_position_embeddings=512,
    ),
    # The original project's GPT-3 Small sized causal LM with a 5,120-token context.
    "clm-gpt3-small": dict(
        vocab_size=22000,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=5120,
        position_embedding_type="axial",
        axial_position_shape=(80, 64),
        is_decoder=True,
    ),
    # ELECTRA-small sized discriminator (KoELECTRA-Small widths).
    "electra-small-discriminator": dict(
        vocab_size=22000,
        embedding_size=128,
        hidden_size=256,
        num_hidden_layers=12,
        num_attention_heads=4,
        max_position_embeddings=512,
    ),
}


def is_integer(value):
    """An int, and not a bool (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def invalid_config(problems):
    """The one-line error that lists every problem of a config."""
    return ValueError("Invalid ReformerKoConfig: " + "; ".join(problems) + ".")


def check_numbers(arguments):
    """Raise if a config's `arguments` hold an integer field that is no integer or out of range, or an
    `axial_position_shape` that is not two positive integers."""
    problems = []
    for name, least in INTEGER_FIELDS.items():
        value = arguments[name]
        if not (value is None and name in OPTIONAL_FIELDS) and not (is_integer(value) and value >= least):
            problems.append(f"{name} must be an integer >= {least}, got {value!r}")
    shape = arguments["axial_position_shape"]
    if shape is not None and not (
        isinstance(shape, (tuple, list)) and len(shape) == 2 and all(is_integer(n) and n >= 1 for n in shape)
    ):
        problems.append(f"axial_position_shape must be two positive integers, got {shape!r}")
    if problems:
        raise invalid_config(problems)


class ReformerKoConfig(PreTrainedConfig):
    r"""
    Configuration of a reformer-ko model: token, segment and position embeddings, reformer-pytorch's `Reformer`
    (LSH self-attention, reversible layers, chunked feed-forward) and a final LayerNorm.

    Args:
        vocab_size (`int`, defaults to 22000): number of tokens of the WordPiece vocabulary.
        hidden_size (`int`, defaults to 512): width of the Reformer layers.
        num_hidden_layers (`int`, defaults to 6): number of reversible (attention, feed-forward) layers.
        num_attention_heads (`int`, defaults to 8): LSH attention heads; must divide `hidden_size`.
        embedding_size (`int`, *optional*): width of the embeddings; defaults to `hidden_size`. When smaller (as in
            ELECTRA), a linear layer projects the embeddings to `hidden_size`.
        max_position_embeddings (`int`, defaults to 512): longest input in tokens; a multiple of `2 * bucket_size`.
        type_vocab_size (`int`, defaults to 2): number of segment (`token_type_ids`) values; 0 disables them.
        position_embedding_type (`str`, defaults to `"rotary"`): `"rotary"` (reformer-pytorch's default, applied to
            queries/keys in every layer), `"axial"` (factorised learned positions) or `"absolute"` (learned table).
        axial_position_shape (`tuple[int, int]`, *optional*): factors of `max_position_embeddings` for axial
            positions; defaults to `(max_position_embeddings // bucket_size, bucket_size)`.
        bucket_size (`int`, defaults to 64): LSH chunk length; attention looks within a chunk and one chunk back.
        num_buckets (`int`, *optional*): hash buckets per round, fixed so that results do not depend on padding;
            defaults to `max_position_embeddings // bucket_size` (rounded up to an even number).
        num_hashes (`int`, defaults to 4): rounds of hashing; more is closer to full attention and slower.
        hash_seed (`int`, defaults to 0): seed of the random rotations used in eval mode, so that eval outputs are
            deterministic and the same on CPU and GPU. Training always draws fresh rotations.
        ff_mult (`int`, defaults to 4): feed-forward inner width as a multiple of `hidden_size`.
        ff_chunks (`int`, defaults to 1): split the feed-forward along the sequence into this many chunks (memory).
        attn_chunks (`int`, defaults to 1): split the attention along batch × heads into this many chunks (memory).
        reverse_thres (`int`, defaults to 0): inputs up to this length run the layers irreversibly (faster, more
            memory); longer ones use reversible layers that recompute activations in the backward pass.
        weight_tie (`bool`, defaults to `False`): share one attention and one feed-forward module across all layers.
        hidden_dropout_prob (`float`, defaults to 0.1): dropout on the embeddings and in the task heads.
        lsh_dropout (`float`, defaults to 0.0): dropout on the LSH attention weights.
        ff_dropout (`float`, defaults to 0.0): dropout inside the feed-forward.
        layer_dropout (`float`, defaults to 0.0): probability of skipping a whole layer in training.
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of the LayerNorms owned by reformer-ko.
        initializer_range (`float`, defaults to 0.02): std of the normal initialisation of every linear and
            embedding weight, reformer-pytorch's included.
        pad_token_id (`int`, defaults to 0): id of `[PAD]`.
        tie_word_embeddings (`bool`, defaults to `True`): tie the language-model output layer to the input embeddings.
        is_decoder (`bool`, defaults to `False`): causal (left-to-right) attention, for `ReformerKoForCausalLM`.
        sparse_prediction (`bool`, defaults to `False`): masked LM: reformer-ko's trainer runs the LM head only at
            the labelled positions (labels != -100), as transformers' ModernBERT does: the same loss for a fraction
            of the head's work (15% at the usual masking rate). It asks for that with `forward(...,
            sparse_prediction=True)`; every other caller gets `logits` of shape (batch, sequence, vocab_size).
        vocab_fingerprint (`str`, *optional*): `reformer_ko.tokenization.vocabulary_fingerprint` of the tokenizer the
            model was trained with, recorded by reformer-ko's training scripts. `check_tokenizer_matches` compares it
            with the tokenizer a script is given; when it is None (older checkpoints, models from elsewhere) the
            tokenizer must have exactly `vocab_size` tokens instead.
        num_labels / problem_type / classifier_dropout: as in transformers, for the classification heads.
    """

    model_type = "reformer_ko"

    def __init__(
        self,
        vocab_size=22000,
        hidden_size=512,
        num_hidden_layers=6,
        num_attention_heads=8,
        embedding_size=None,
        max_position_embeddings=512,
        type_vocab_size=2,
        position_embedding_type="rotary",
        axial_position_shape=None,
        bucket_size=64,
        num_buckets=None,
        num_hashes=4,
        hash_seed=0,
        ff_mult=4,
        ff_chunks=1,
        attn_chunks=1,
        reverse_thres=0,
        weight_tie=False,
        hidden_dropout_prob=0.1,
        lsh_dropout=0.0,
        ff_dropout=0.0,
        layer_dropout=0.0,
        layer_norm_eps=1e-5,
        initializer_range=0.02,
        classifier_dropout=None,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=True,
        is_decoder=False,
        sparse_prediction=False,
        vocab_fingerprint=None,
        **kwargs,
    ):
        # Before any default is computed from them: a string or a 0 would escape as a TypeError or ZeroDivisionError.
        check_numbers(locals())
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.embedding_size = hidden_size if embedding_size is None else embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.position_embedding_type = position_embedding_type
        self.bucket_size = bucket_size
        if axial_position_shape is None and position_embedding_type == "axial":
            axial_position_shape = (math.ceil(max_position_embeddings / bucket_size), bucket_size)
        self.axial_position_shape = tuple(axial_position_shape) if axial_position_shape is not None else None
        if num_buckets is None:
            num_buckets = max(2, max_position_embeddings // bucket_size)
            num_buckets += num_buckets % 2
        self.num_buckets = num_buckets
        self.num_hashes = num_hashes
        self.hash_seed = hash_seed
        self.ff_mult = ff_mult
        self.ff_chunks = ff_chunks
        self.attn_chunks = attn_chunks
        self.reverse_thres = reverse_thres
        self.weight_tie = weight_tie
        self.hidden_dropout_prob = hidden_dropout_prob
        self.lsh_dropout = lsh_dropout
        self.ff_dropout = ff_dropout
        self.layer_dropout = layer_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.classifier_dropout = classifier_dropout
        self.pad_token_id = pad_token_id
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.tie_word_embeddings = tie_word_embeddings
        self.is_decoder = is_decoder
        self.sparse_prediction = sparse_prediction
        self.vocab_fingerprint = vocab_fingerprint
        super().__init__(**kwargs)
        self._validate()

    def _validate(self):
        problems = []
        if self.hidden_size % self.num_attention_heads:
            problems.append(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); change one of them"
            )
        elif self.position_embedding_type == "rotary" and (self.hidden_size // self.num_attention_heads) % 2:
            problems.append(
                f"rotary positions need an even head size, got hidden_size / num_attention_heads = "
                f"{self.hidden_size // self.num_attention_heads}"
            )
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            problems.append(
                f"position_embedding_type must be one of {POSITION_EMBEDDING_TYPES}, got "
                f"{self.position_embedding_type!r}"
            )
        if self.max_position_embeddings % (2 * self.bucket_size):
            problems.append(
                f"max_position_embeddings ({self.max_position_embeddings}) must be a multiple of 2 * bucket_size "
                f"({2 * self.bucket_size}); e.g. use {math.ceil(self.max_position_embeddings / (2 * self.bucket_size)) * 2 * self.bucket_size}"
            )
        if self.num_buckets < 2 or self.num_buckets % 2:
            problems.append(f"num_buckets must be an even number >= 2, got {self.num_buckets}")
        if self.position_embedding_type == "axial":
            if len(self.axial_position_shape) != 2 or math.prod(self.axial_position_shape) != self.max_position_embeddings:
                problems.append(
                    f"axial_position_shape {self.axial_position_shape} must be two factors whose product is "
                    f"max_position_embeddings ({self.max_position_embeddings})"
                )
        if problems:
            raise invalid_config(problems)
        self.validate_output_attentions()

    def validate_output_attentions(self):
        if self.output_attentions:
            raise ValueError(NO_ATTENTION_WEIGHTS)

    @property
    def output_attentions(self):
        """Always False: see `NO_ATTENTION_WEIGHTS`."""
        return self._output_attentions

    @output_attentions.setter
    def output_attentions(self, value):
        if value:
            raise ValueError(NO_ATTENTION_WEIGHTS)
        self._output_attentions = value

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        model_type = config_dict.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(
                f"This checkpoint is a {model_type!r} model, not a {cls.model_type!r} one: load it with its own "
                "classes (e.g. transformers' AutoModel), or point to a reformer-ko checkpoint."
            )
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ReformerKoConfig":
        """A config of one of the original project's model sizes (see `PRESETS`), with any field overridden."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})
