"""Korean text corpora → datasets of documents → model-ready training blocks.

A corpus is UTF-8 text with one sentence per line and a blank line between documents. `load_corpus`
turns files, directories or globs into a `datasets.Dataset` (or, streamed, an `IterableDataset`) with one
row per document, `{"sentences": [...]}`; `pack_mlm_blocks` and `pack_causal_blocks` turn those rows
into the inputs of the masked-LM / ELECTRA and causal-LM models.
"""

import glob
import itertools
import os
import re
from pathlib import Path

import datasets
from datasets.exceptions import DatasetGenerationError

from ..errors import UserInputError
from .text import is_blank, strip_invisible

DOCUMENT_FEATURES = datasets.Features({"sentences": datasets.List(datasets.Value("string"))})
MLM_BLOCK_FEATURES = datasets.Features(
    {
        "input_ids": datasets.List(datasets.Value("int32")),
        "token_type_ids": datasets.List(datasets.Value("int8")),
        "attention_mask": datasets.List(datasets.Value("int8")),
    }
)
DOCUMENT_IDS_FEATURES = datasets.Features({"input_ids": datasets.List(datasets.Value("int32"))})
CAUSAL_BLOCK_FEATURES = datasets.Features(
    {
        "input_ids": datasets.List(datasets.Value("int32")),
        "attention_mask": datasets.List(datasets.Value("int8")),
    }
)
ENCODING_ERRORS = ("strict", "replace")

# Files larger than this are read as several shards, cut after a blank line, so `num_proc` workers (or
# DataLoader workers when streaming) can share one big file.
_SHARD_BYTES = 64 * 2**20
_GLOB_CHARACTERS = re.compile(r"[*?\[]")


class CorpusError(UserInputError):
    """A corpus file that cannot be read as the corpus format; the message names the file and line."""


def corpus_files(paths) -> list[Path]:
    """Resolve files, directories (every `*.txt` below them) and glob patterns to a sorted list of files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for entry in paths:
        path = Path(entry)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*.txt")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise FileNotFoundError(f"corpus directory {path} holds no .txt files")
            files.extend(found)
        elif _GLOB_CHARACTERS.search(str(entry)):
            found = sorted(Path(p) for p in glob.glob(str(entry), recursive=True) if Path(p).is_file())
            if not found:
                raise FileNotFoundError(f"no corpus file matches {entry}")
            files.extend(found)
        else:
            raise FileNotFoundError(f"corpus path not found: {entry}")
    if not files:
        raise FileNotFoundError("no corpus path given")
    return list(dict.fromkeys(files))


def read_documents(paths, *, encoding_errors="strict"):
    """An iterator over the documents of a corpus, each a list of sentences, reading one line at a time.

    Every file is checked for sentences when this is called, before any document is read.
    """
    _check_encoding_errors(encoding_errors)
    files = corpus_files(paths)
    for path in files:
        _check_has_sentences(path)
    return (document for path in files for document in _read_shard(str(path), 0, path.stat().st_size, encoding_errors))


def load_corpus(paths, *, streaming=False, num_proc=None, cache_dir=None, encoding_errors="strict"):
    """Load a corpus as a dataset of documents, `{"sentences": list[str]}` per row.

    Without `streaming` the documents are written once to memory-mapped Arrow files under `cache_dir`
    (the `datasets` cache by default) by `num_proc` workers; a later call on unchanged files reuses them.
    With `streaming=True` the result is an `IterableDataset` that reads the files on the fly, for corpora
    larger than the disk cache or RAM; packing it gives the same blocks. `encoding_errors="replace"`
    reads invalid UTF-8 as U+FFFD instead of raising `CorpusError`.
    """
    _check_encoding_errors(encoding_errors)
    files = corpus_files(paths)
    for path in files:
        _check_has_sentences(path)
    # Size and modification time are part of the shards so that the cache key changes with the files:
    # `datasets` fingerprints the generator and its arguments, not the contents of the files they name.
    shards = [shard for path in files for shard in _file_shards(path, _SHARD_BYTES)]
    gen_kwargs = {"shards": shards, "encoding_errors": encoding_errors}
    if streaming:
        return datasets.IterableDataset.from_generator(
            _generate_documents, features=DOCUMENT_FEATURES, gen_kwargs=gen_kwargs
        )
    # An interrupted run cannot leave a cache that looks complete: `datasets` writes into
    # `<cache>.incomplete`, renames it only after the last document, and treats a cache as present only
    # when its dataset_info.json exists in the final directory.
    try:
        return datasets.Dataset.from_generator(
            _generate_documents,
            features=DOCUMENT_FEATURES,
            cache_dir=None if cache_dir is None else str(cache_dir),
            gen_kwargs=gen_kwargs,
            num_proc=num_proc if num_proc and num_proc > 1 and len(shards) > 1 else None,
        )
    except DatasetGenerationError as error:
        raise _corpus_error_behind(error) from error


def pack_mlm_blocks(documents, tokenizer, max_seq_length=512, *, num_proc=None, batch_size=1000, model_max_length=None):
    """Pack each document's sentences greedily into `[CLS] … [SEP]` blocks of at most `max_seq_length` tokens.

    Blocks never mix documents; a sentence longer than a block continues in the next one. Each row has
    `input_ids`, `token_type_ids` (zeros) and `attention_mask` (ones); blocks are not padded, the collator
    pads each batch. `model_max_length` is the model's position limit, checked like the tokenizer's.
    `num_proc` applies to a `Dataset`; a streamed `IterableDataset` is packed lazily as it is read.
    """
    _check_length("max_seq_length", max_seq_length, tokenizer, model_max_length, minimum=3)
    _check_special_tokens(tokenizer, ("cls_token", "sep_token"))
    fn_kwargs = {
        "tokenizer": tokenizer,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "capacity": max_seq_length - 2,
    }
    return _map_documents(
        documents, _mlm_blocks, fn_kwargs, MLM_BLOCK_FEATURES, num_proc, batch_size, "Packing MLM blocks"
    )


def pack_causal_blocks(documents, tokenizer, block_size=5120, *, num_proc=None, batch_size=1000, model_max_length=None):
    """Join documents with `[SEP]` as the end-of-document token and cut the stream into `block_size` blocks.

    As in transformers' `run_clm.py`, the stream is cut per batch of `batch_size` documents and the last
    partial block of each batch is dropped, so every block is exactly `block_size` tokens long. Rows have
    `input_ids` and `attention_mask`; the causal-LM collator adds the labels. `num_proc` workers tokenize the
    documents; the batches are then cut in one process, so that they are the documents `[k * batch_size,
    (k + 1) * batch_size)` and the blocks the same for any `num_proc` and when streamed (`datasets` would give
    each worker a share of the documents and cut batches at the shares' edges).
    """
    _check_length("block_size", block_size, tokenizer, model_max_length, minimum=1)
    _check_special_tokens(tokenizer, ("sep_token",))
    fn_kwargs = {"tokenizer": tokenizer, "end_of_document_id": tokenizer.sep_token_id}
    document_ids = _map_documents(
        documents, _document_ids, fn_kwargs, DOCUMENT_IDS_FEATURES, num_proc, batch_size, "Tokenizing documents"
    )
    return _map_documents(
        document_ids, _causal_blocks, {"block_size": block_size}, CAUSAL_BLOCK_FEATURES, None, batch_size,
        "Cutting causal-LM blocks",
    )


def _map_documents(documents, function, fn_kwargs, features, num_proc, batch_size, desc):
    options = {
        "batched": True,
        "batch_size": batch_size,
        "remove_columns": list(documents.features),
        "features": features,
        "fn_kwargs": fn_kwargs,
    }
    if isinstance(documents, datasets.IterableDataset):
        return documents.map(function, **options)
    return documents.map(function, num_proc=num_proc, desc=desc, **options)


def _mlm_blocks(batch, tokenizer, cls_token_id, sep_token_id, capacity):
    sentence_ids = _encode_sentences(tokenizer, batch["sentences"])
    blocks = []
    for document in batch["sentences"]:
        sentences = itertools.islice(sentence_ids, len(document))
        blocks.extend([cls_token_id, *content, sep_token_id] for content in _pack_sentences(sentences, capacity))
    return {
        "input_ids": blocks,
        "token_type_ids": [[0] * len(block) for block in blocks],
        "attention_mask": [[1] * len(block) for block in blocks],
    }


def _pack_sentences(sentences, capacity):
    """Greedy packing of one document's token lists into lists of at most `capacity` tokens."""
    block = []
    for ids in sentences:
        if len(block) + len(ids) <= capacity:
            block.extend(ids)
            continue
        if len(ids) <= capacity:
            yield block
            block = list(ids)
            continue
        # A sentence that fits in no block fills the current one and runs on into the next.
        start = capacity - len(block)
        yield block + ids[:start]
        while len(ids) - start > capacity:
            yield ids[start : start + capacity]
            start += capacity
        block = ids[start:]
    if block:
        yield block


def _document_ids(batch, tokenizer, end_of_document_id):
    sentence_ids = _encode_sentences(tokenizer, batch["sentences"])
    documents = []
    for document in batch["sentences"]:
        ids = [token for sentence in itertools.islice(sentence_ids, len(document)) for token in sentence]
        ids.append(end_of_document_id)
        documents.append(ids)
    return {"input_ids": documents}


def _causal_blocks(batch, block_size):
    stream = [token for ids in batch["input_ids"] for token in ids]
    usable = len(stream) - len(stream) % block_size
    blocks = [stream[start : start + block_size] for start in range(0, usable, block_size)]
    return {"input_ids": blocks, "attention_mask": [[1] * block_size for _ in blocks]}


def _encode_sentences(tokenizer, documents):
    """Token ids of every sentence of a batch of documents, as one iterator in corpus order."""
    sentences = [sentence for document in documents for sentence in document]
    if not sentences:
        return iter(())
    encoded = tokenizer(
        sentences,
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return iter(encoded["input_ids"])


def _check_length(name, length, tokenizer, model_max_length, *, minimum):
    if length < minimum:
        raise UserInputError(f"{name}={length} is too small: it must be at least {minimum}")
    if length > tokenizer.model_max_length:
        raise UserInputError(
            f"{name}={length} is longer than the tokenizer's model_max_length={tokenizer.model_max_length}; "
            "lower it, or save the tokenizer with a larger model_max_length"
        )
    if model_max_length is not None and length > model_max_length:
        raise UserInputError(f"{name}={length} is longer than the model's limit of {model_max_length} positions")


def _check_special_tokens(tokenizer, names):
    missing = [
        name
        for name in names
        if getattr(tokenizer, name, None) is None or getattr(tokenizer, f"{name}_id", None) is None
    ]
    if missing:
        raise UserInputError(f"the tokenizer has no {', '.join(missing)}, which packing needs")


def _check_encoding_errors(encoding_errors):
    if encoding_errors not in ENCODING_ERRORS:
        raise UserInputError(f"encoding_errors must be one of {ENCODING_ERRORS}, not {encoding_errors!r}")


def _check_has_sentences(path):
    # Invalid UTF-8 reads as U+FFFD here, a visible character: the reader reports it where it is.
    with open(path, encoding="utf-8", errors="replace") as file:
        if all(is_blank(line) for line in file):
            raise CorpusError(
                f"{path}: no sentences (the file is empty or its lines hold only spaces, byte-order marks, "
                "zero-width or control characters); give a file with one sentence per line"
            )


def _file_shards(path, shard_bytes):
    """Cut a file into (path, start, end, size, mtime) byte ranges, each starting just after a blank line."""
    stat = path.stat()
    starts = [0]
    with open(path, "rb") as file:
        target = shard_bytes
        while target < stat.st_size:
            file.seek(target)
            file.readline()
            for line in iter(file.readline, b""):
                if is_blank(line.decode("utf-8", errors="replace")):
                    break
            boundary = file.tell()
            if boundary >= stat.st_size:
                break
            starts.append(boundary)
            target = boundary + shard_bytes
    ends = starts[1:] + [stat.st_size]
    return [(str(path), start, end, stat.st_size, stat.st_mtime_ns) for start, end in zip(starts, ends)]


def _generate_documents(shards, encoding_errors):
    for path, start, end, *_ in shards:
        for sentences in _read_shard(path, start, end, encoding_errors):
            yield {"sentences": sentences}


def _read_shard(path, start, end, encoding_errors):
    document = []
    offset = start
    with open(path, "rb") as file:
        file.seek(start)
        while offset < end:
            raw = file.readline()
            if not raw:
                break
            try:
                line = raw.decode("utf-8", errors=encoding_errors)
            except UnicodeDecodeError as error:
                byte = offset + error.start
                raise CorpusError(
                    f"{path}:{_line_number(path, byte)}: invalid UTF-8 at byte offset {byte} "
                    "(pass encoding_errors='replace' to read it as U+FFFD)"
                ) from None
            offset += len(raw)
            sentence = strip_invisible(line)
            if sentence:
                document.append(sentence)
            elif document:
                yield document
                document = []
    if document:
        yield document


def _line_number(path, byte):
    """1-based number of the line holding `byte`; only computed on the error path."""
    newlines = 0
    with open(path, "rb") as file:
        remaining = byte
        while remaining > 0:
            chunk = file.read(min(remaining, 2**20))
            if not chunk:
                break
            newlines += chunk.count(b"\n")
            remaining -= len(chunk)
    return newlines + 1


def _corpus_error_behind(error):
    """The `CorpusError` that a `datasets` generation error wraps, or the error itself."""
    cause = error.__cause__
    if isinstance(cause, CorpusError):
        return CorpusError(str(cause))
    # From a `num_proc` worker the original exception arrives only as the text of a remote traceback.
    match = re.search(r"CorpusError: (.+)", str(cause))
    if match:
        return CorpusError(match.group(1))
    return error
