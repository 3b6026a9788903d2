"""The Korean WordPiece tokenizer: train it on a corpus, save it for `AutoTokenizer`, load it with checks.

The pipeline is BERT's (`BertWordPieceTokenizer` semantics: clean text, split CJK ideographs, cased, no
accent stripping, `##` continuation pieces) behind an NFC normalizer, so that decomposed (NFD) Hangul
gets the same ids as composed Hangul.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .data.corpus import ENCODING_ERRORS, CorpusError, corpus_files, read_documents

# In this order their ids are 0..4; models rely on [PAD] being 0.
SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
CONTINUATION_PREFIX = "##"
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]


def _wordpiece_pipeline() -> Tokenizer:
    """An untrained `tokenizers.Tokenizer` with the normalizer, pre-tokenizer and decoder of our WordPiece."""
    backend = Tokenizer(
        models.WordPiece(unk_token=SPECIAL_TOKENS["unk_token"], continuing_subword_prefix=CONTINUATION_PREFIX)
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
    show_progress=False,
) -> PreTrainedTokenizerFast:
    """Train a WordPiece vocabulary on corpus files, directories or globs, save it to `output_dir`, return it.

    `model_max_length` is stored with the tokenizer as the longest sequence a model may be given; set it
    to the model's number of positions.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} leaves no room beside the {len(SPECIAL_TOKENS)} special tokens")
    if limit_alphabet < 1:
        raise ValueError(f"limit_alphabet={limit_alphabet} must be at least 1")
    files = corpus_files(corpus)
    backend = _wordpiece_pipeline()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        limit_alphabet=limit_alphabet,
        special_tokens=list(SPECIAL_TOKENS.values()),
        continuing_subword_prefix=CONTINUATION_PREFIX,
        show_progress=show_progress,
    )
    backend.train_from_iterator(_documents_with_progress(files, encoding_errors, show_progress), trainer=trainer)
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
    save_tokenizer(tokenizer, output_dir)
    return tokenizer


def save_tokenizer(tokenizer, output_dir) -> None:
    """Save `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json` and a BERT `vocab.txt`.

    Files are written to a temporary directory first and moved into place, so an interrupted save never
    leaves a truncated file behind.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tokenizer-", dir=output_dir))
    try:
        tokenizer.save_pretrained(staging)
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        (staging / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
        special_tokens_map = {name: getattr(tokenizer, name) for name in SPECIAL_TOKENS}
        (staging / "special_tokens_map.json").write_text(
            json.dumps(special_tokens_map, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        for path in staging.iterdir():
            os.replace(path, output_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_tokenizer(directory) -> PreTrainedTokenizerFast:
    """Load a saved tokenizer directory with `AutoTokenizer`, checking it has the special tokens models need."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"tokenizer directory not found: {directory}")
    if not (directory / "tokenizer.json").is_file() and not (directory / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"{directory} holds no tokenizer (no tokenizer.json or tokenizer_config.json)")
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    vocab = tokenizer.get_vocab()
    missing = [
        f"{name} ({expected})"
        for name, expected in SPECIAL_TOKENS.items()
        if getattr(tokenizer, name, None) is None or getattr(tokenizer, name) not in vocab
    ]
    if missing:
        raise ValueError(
            f"{directory}: the tokenizer lacks {', '.join(missing)}; reformer-ko models need "
            f"{' '.join(SPECIAL_TOKENS.values())} in its vocabulary and set as its special tokens"
        )
    return tokenizer


def _documents_with_progress(files, encoding_errors, show_progress):
    """The corpus documents for training, with a progress bar over the bytes read."""
    total = sum(path.stat().st_size for path in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="Reading corpus", disable=not show_progress) as progress:
        for path in files:
            done = progress.n
            for document in read_documents([path], encoding_errors=encoding_errors):
                if show_progress:
                    progress.update(sum(len(sentence.encode("utf-8")) + 1 for sentence in document))
                yield document
            progress.update(done + path.stat().st_size - progress.n)


def add_train_tokenizer_arguments(parser):
    """Arguments of `reformer-ko train-tokenizer`; returns its handler."""
    parser.description = "Train a WordPiece tokenizer on a corpus and save it as a transformers tokenizer directory."
    parser.add_argument(
        "--corpus", nargs="+", required=True, metavar="PATH", help="corpus files, directories or glob patterns"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="directory to save the tokenizer in")
    parser.add_argument("--vocab-size", type=int, default=22000, help="vocabulary size (default: %(default)s)")
    parser.add_argument(
        "--limit-alphabet", type=int, default=6000, help="most distinct characters kept (default: %(default)s)"
    )
    parser.add_argument(
        "--min-frequency", type=int, default=2, help="fewest occurrences of a merged piece (default: %(default)s)"
    )
    parser.add_argument(
        "--model-max-length", type=int, default=5120, help="longest sequence a model takes (default: %(default)s)"
    )
    parser.add_argument(
        "--encoding-errors",
        choices=ENCODING_ERRORS,
        default="strict",
        help="on invalid UTF-8: stop, or read it as U+FFFD",
    )
    return _train_tokenizer_command


def _train_tokenizer_command(args) -> int:
    try:
        tokenizer = train_tokenizer(
            args.corpus,
            args.output,
            vocab_size=args.vocab_size,
            limit_alphabet=args.limit_alphabet,
            min_frequency=args.min_frequency,
            model_max_length=args.model_max_length,
            encoding_errors=args.encoding_errors,
            show_progress=True,
        )
    except (FileNotFoundError, CorpusError, ValueError) as error:
        print(f"reformer-ko train-tokenizer: error: {error}", file=sys.stderr)
        return 1
    print(f"Saved a WordPiece tokenizer of {len(tokenizer)} tokens to {args.output}")
    return 0
