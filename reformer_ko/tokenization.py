"""The Korean WordPiece tokenizer: train it on a corpus, save it for `AutoTokenizer`, load it with checks.

The pipeline is BERT's (`BertWordPieceTokenizer` semantics: clean text, split CJK ideographs, cased, no
accent stripping, `##` continuation pieces) behind an NFC normalizer, so that decomposed (NFD) Hangul
gets the same ids as composed Hangul. Training is deterministic (`reformer_ko.wordpiece_trainer`), and a
tokenizer is tied to the models trained with it by `vocabulary_fingerprint` and `check_tokenizer_matches`.
"""

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .data.corpus import ENCODING_ERRORS, CorpusError, corpus_files, read_documents
from .cli import integer_at_least
from .errors import UserInputError
from .files import replace_directory
from .wordpiece_trainer import count_words, train_wordpiece_vocabulary

# In this order their ids are 0..4; models rely on [PAD] being 0.
SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
CONTINUATION_PREFIX = "##"
# Options of `from_pretrained` that transformers writes into a loaded tokenizer's saved config.
LOADING_OPTIONS = ("local_files_only", "is_local")
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]
# What a tokenizer directory may hold: the files saved here and those of other transformers tokenizers. Saving
# replaces all of them as a set, so none of an earlier tokenizer is left beside the new one.
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "added_tokens.json",
        "vocab.json",
        "merges.txt",
        "tokenizer.model",
        "spiece.model",
        "sentencepiece.bpe.model",
        "chat_template.jinja",
        "chat_template.json",
    }
)


def _wordpiece_pipeline(vocabulary=None) -> Tokenizer:
    """A `tokenizers.Tokenizer` with the normalizer, pre-tokenizer and decoder of our WordPiece, over `vocabulary`
    (token -> id; empty when None)."""
    backend = Tokenizer(
        models.WordPiece(
            vocabulary, unk_token=SPECIAL_TOKENS["unk_token"], continuing_subword_prefix=CONTINUATION_PREFIX
        )
    )
    backend.normalizer = normalizers.Sequence(
        [
            normalizers.NFC(),
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
            ),
        ]
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)
    return backend


def train_tokenizer(
    corpus,
    output_dir,
    *,
    vocab_size=22000,
    limit_alphabet=6000,
    min_frequency=2,
    model_max_length=5120,
    encoding_errors="strict",
    overwrite=False,
    show_progress=False,
) -> PreTrainedTokenizerFast:
    """Train a WordPiece vocabulary on corpus files, directories or globs, save it to `output_dir`, return it.

    The same corpus and options give byte-identical files, in any process (`reformer_ko.wordpiece_trainer`).
    `model_max_length` is stored with the tokenizer as the longest sequence a model may be given; set it
    to the model's number of positions. `output_dir` is checked before training; for it and `overwrite`
    see `save_tokenizer`.
    """
    _check_training_options(vocab_size, limit_alphabet, min_frequency, model_max_length)
    _check_output_dir(Path(output_dir), overwrite)
    files = corpus_files(corpus)
    documents = _documents_with_progress(files, encoding_errors, show_progress)
    word_counts = count_words((sentence for document in documents for sentence in document), _wordpiece_pipeline())
    if not word_counts:
        raise CorpusError(
            f"the corpus ({', '.join(map(str, files[:3]))}{' ...' if len(files) > 3 else ''}) holds no word the "
            "tokenizer keeps: its normaliser removes every character (U+FFFD, private-use and control characters); "
            "give a corpus of text"
        )
    with tqdm(total=vocab_size, unit="token", desc="Training WordPiece", disable=not show_progress) as progress:
        vocabulary = train_wordpiece_vocabulary(
            word_counts,
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS.values(),
            limit_alphabet=limit_alphabet,
            min_frequency=min_frequency,
            continuing_subword_prefix=CONTINUATION_PREFIX,
            progress=progress,
        )
    backend = _wordpiece_pipeline({token: index for index, token in enumerate(vocabulary)})
    backend.add_special_tokens(list(SPECIAL_TOKENS.values()))
    cls_token, sep_token = SPECIAL_TOKENS["cls_token"], SPECIAL_TOKENS["sep_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, backend.token_to_id(cls_token)), (sep_token, backend.token_to_id(sep_token))],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        do_lower_case=False,
        model_input_names=MODEL_INPUT_NAMES,
        **SPECIAL_TOKENS,
    )
    save_tokenizer(tokenizer, output_dir, overwrite=overwrite)
    return tokenizer


def _check_training_options(vocab_size, limit_alphabet, min_frequency, model_max_length):
    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserInputError(f"vocab_size={vocab_size} leaves no room beside the {len(SPECIAL_TOKENS)} special tokens")
    for name, value, minimum in (
        ("limit_alphabet", limit_alphabet, 1),
        ("min_frequency", min_frequency, 0),
        ("model_max_length", model_max_length, 1),
    ):
        if value < minimum:
            raise UserInputError(f"{name}={value} must be at least {minimum}")


def save_tokenizer(tokenizer, output_dir, *, overwrite=False) -> None:
    """Save `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json` and a BERT `vocab.txt`.

    `output_dir` is new, or holds only tokenizer files (`TOKENIZER_FILES`): the files are written to a directory
    beside it that then takes its place, so the old tokenizer is replaced whole, none of its files stays, and
    an interrupted save leaves the old one untouched. A directory holding other files (a model's) is refused
    unless `overwrite=True`, which keeps those files and replaces the tokenizer files one by one.
    """
    output_dir = Path(output_dir)
    others = _check_output_dir(output_dir, overwrite)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # A name of our own rather than `tempfile.mkdtemp`, whose 0700 mode the directory would keep.
    staging = output_dir.parent / f".{output_dir.name}.saving-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        forget_loading_options(tokenizer).save_pretrained(staging)
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        (staging / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
        special_tokens_map = {name: getattr(tokenizer, name) for name in SPECIAL_TOKENS}
        (staging / "special_tokens_map.json").write_text(
            json.dumps(special_tokens_map, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        if others:
            _replace_files(staging, output_dir)
        else:
            replace_directory(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def forget_loading_options(tokenizer):
    """`tokenizer` without the record of how it was loaded (`local_files_only`, `is_local`), which transformers
    would otherwise write into every tokenizer_config.json it saves (the Trainer's own saves included): a saved
    tokenizer is the same files however it was loaded."""
    for option in LOADING_OPTIONS:
        tokenizer.init_kwargs.pop(option, None)
    return tokenizer


def _check_output_dir(output_dir: Path, overwrite: bool) -> list[str]:
    """The names of the entries of `output_dir` that are not tokenizer files; raises where it cannot be saved to."""
    existing = next((path for path in (output_dir, *output_dir.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        raise NotADirectoryError(
            f"{existing} is a file, but a tokenizer is saved as a directory: give a directory path for the output"
        )
    if existing != output_dir:
        return []
    others = sorted(path.name for path in output_dir.iterdir() if path.name not in TOKENIZER_FILES)
    if others and not overwrite:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise FileExistsError(
            f"{output_dir} holds files that are not a tokenizer's ({shown}): give a new or tokenizer-only "
            "directory, or pass --overwrite (overwrite=True) to replace only its tokenizer files"
        )
    return others


def _replace_files(staging: Path, output_dir: Path) -> None:
    """Move the files of `staging` into `output_dir` and delete the tokenizer files they do not replace."""
    saved = {path.name for path in staging.iterdir()}
    for name in saved:
        os.replace(staging / name, output_dir / name)
    for name in sorted(TOKENIZER_FILES - saved):
        (output_dir / name).unlink(missing_ok=True)


def load_tokenizer(directory) -> PreTrainedTokenizerFast:
    """Load a saved tokenizer directory with `AutoTokenizer`, checking it has the special tokens models need."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"tokenizer directory not found: {directory}")
    if not (directory / "tokenizer.json").is_file() and not (directory / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"{directory} holds no tokenizer (no tokenizer.json or tokenizer_config.json)")
    tokenizer = forget_loading_options(AutoTokenizer.from_pretrained(directory, local_files_only=True))
    vocab = tokenizer.get_vocab()
    missing = [
        f"{name} ({expected})"
        for name, expected in SPECIAL_TOKENS.items()
        if getattr(tokenizer, name, None) is None or getattr(tokenizer, name) not in vocab
    ]
    if missing:
        raise UserInputError(
            f"{directory}: the tokenizer lacks {', '.join(missing)}; reformer-ko models need "
            f"{' '.join(SPECIAL_TOKENS.values())} in its vocabulary and set as its special tokens"
        )
    return tokenizer


def _documents_with_progress(files, encoding_errors, show_progress):
    """The corpus documents for training, with a progress bar over the bytes read."""
    documents = read_documents(files, encoding_errors=encoding_errors)
    total = sum(path.stat().st_size for path in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="Reading corpus", disable=not show_progress) as progress:
        for document in documents:
            if show_progress:
                progress.update(sum(len(sentence.encode("utf-8")) + 1 for sentence in document))
            yield document
        progress.update(total - progress.n)


def vocabulary_fingerprint(tokenizer) -> str:
    """`sha256:` and the digest of the tokenizer's tokens with their ids and of its special tokens.

    Two tokenizers have the same fingerprint exactly when they give every token the same id and name the same
    special tokens; a model records the fingerprint of its tokenizer in `config.vocab_fingerprint`.
    """
    content = {
        "vocabulary": sorted((index, token) for token, index in tokenizer.get_vocab().items()),
        "special_tokens": {name: str(token) for name, token in tokenizer.special_tokens_map.items()},
    }
    encoded = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def check_tokenizer_matches(config, tokenizer) -> None:
    """Raise a one-line `UserInputError` unless `tokenizer` is the one the model of `config` was trained with.

    The rule: when the config records a `vocab_fingerprint` (models trained by reformer-ko do), the tokenizer's
    `vocabulary_fingerprint` must equal it. Without one (older checkpoints, models from elsewhere) the tokenizer
    must have exactly `config.vocab_size` tokens: a larger one has ids without embeddings, and a smaller one is
    another vocabulary, not a part of this one. `UserInputError` is a `ValueError`.
    """
    tokenizer_name = tokenizer.name_or_path or type(tokenizer).__name__
    model_name = getattr(config, "_name_or_path", "") or "the model"
    expected = getattr(config, "vocab_fingerprint", None)
    if expected is None:
        if len(tokenizer) != config.vocab_size:
            raise UserInputError(
                f"the tokenizer {tokenizer_name} has {len(tokenizer)} tokens but {model_name} has "
                f"vocab_size={config.vocab_size} (and records no vocab_fingerprint): pass the tokenizer the model "
                "was trained with, or a model with vocab_size equal to this tokenizer's size"
            )
        return
    actual = vocabulary_fingerprint(tokenizer)
    if actual != expected:
        raise UserInputError(
            f"the tokenizer {tokenizer_name} (vocabulary {_short(actual)}) is not the one {model_name} was trained "
            f"with (vocab_fingerprint {_short(expected)}): its ids mean other tokens; pass the tokenizer saved with "
            "the model (its directory)"
        )


def _short(fingerprint: str) -> str:
    return fingerprint[: len("sha256:") + 12]


def add_train_tokenizer_arguments(parser):
    """Arguments of `reformer-ko train-tokenizer`; returns its handler."""
    parser.description = "Train a WordPiece tokenizer on a corpus and save it as a transformers tokenizer directory."
    parser.add_argument(
        "--corpus", nargs="+", required=True, metavar="PATH", help="corpus files, directories or glob patterns"
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="directory to save the tokenizer in (new, or a tokenizer's)"
    )
    parser.add_argument(
        "--vocab-size",
        type=integer_at_least(len(SPECIAL_TOKENS) + 1),
        default=22000,
        help="vocabulary size (default: %(default)s)",
    )
    parser.add_argument(
        "--limit-alphabet",
        type=integer_at_least(1),
        default=6000,
        help="most distinct characters kept (default: %(default)s)",
    )
    parser.add_argument(
        "--min-frequency",
        type=integer_at_least(0),
        default=2,
        help="fewest occurrences of a merged piece (default: %(default)s)",
    )
    parser.add_argument(
        "--model-max-length",
        type=integer_at_least(1),
        default=5120,
        help="longest sequence a model takes (default: %(default)s)",
    )
    parser.add_argument(
        "--encoding-errors",
        choices=ENCODING_ERRORS,
        default="strict",
        help="on invalid UTF-8: stop, or read it as U+FFFD",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="save into a directory that holds other files too (a model's), replacing only its tokenizer files",
    )
    return _train_tokenizer_command


def _train_tokenizer_command(args) -> int:
    # A wrong input raises `UserInputError` or `OSError`, which `reformer-ko` prints as one line (exit status 1).
    tokenizer = train_tokenizer(
        args.corpus,
        args.output,
        vocab_size=args.vocab_size,
        limit_alphabet=args.limit_alphabet,
        min_frequency=args.min_frequency,
        model_max_length=args.model_max_length,
        encoding_errors=args.encoding_errors,
        overwrite=args.overwrite,
        show_progress=True,
    )
    print(f"Saved a WordPiece tokenizer of {len(tokenizer)} tokens to {args.output}")
    return 0
