"""`reformer-ko prepare-corpus`: raw Korean text → the corpus format, streamed, into shards that appear whole.

read (`sources`) → clean and deduplicate (`cleaning`) → split into sentences (`sentences`) → write. Memory stays
flat in the input's size: one document at a time is read and cleaned, Kiwi keeps a few dozen paragraphs in
flight, and deduplication keeps a digest per document. The shards are written into a hidden staging directory
beside the output and the directory is renamed into place once the last document is written, so a run that
fails or is killed leaves no output that looks complete.
"""

import argparse
import json
import os
import re
import shutil
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..cli import integer_at_least
from ..errors import UserInputError
from ..files import replace_directory
from .cleaning import KEEP_OR_DROP, CleaningOptions, DocumentCleaner
from .corpus import ENCODING_ERRORS
from .sentences import SentenceSplitter
from .sources import FORMATS, TEXT_LAYOUTS, SourceError, detect_format, input_files, read_source

DEFAULT_SHARD_BYTES = 128 * 2**20
SHARD_NAME = "corpus-{index:05d}-of-{count:05d}.txt"
SUMMARY_FILE = "prepare_corpus.json"
STAGES = ("reading and extraction", "cleaning", "sentence splitting", "writing")


class PrepareError(UserInputError):
    """A run that cannot produce a corpus: where it would write, or nothing left to write."""


@dataclass
class PrepareSummary:
    """What a run read, dropped and wrote; `format()` is the table the CLI prints."""

    output_dir: str
    input_bytes: int = 0
    documents_read: int = 0
    lines_read: int = 0
    documents_written: int = 0
    sentences_written: int = 0
    dropped: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # shard name -> bytes
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)

    def format(self) -> str:
        output_bytes = sum(self.files.values())
        stages = ", ".join(
            f"{name} {seconds / max(self.seconds, 1e-9):.0%}" for name, seconds in self.stage_seconds.items()
        )
        rows = [
            ("input", _size(self.input_bytes)),
            ("documents", f"{self.documents_read:,} read, {self.documents_written:,} written"),
            ("lines / sentences", f"{self.lines_read:,} lines read, {self.sentences_written:,} sentences written"),
            *((name, f"{count:,}") for name, count in self.dropped.items()),
            (
                "output",
                f"{self.output_dir}: {len(self.files)} file(s), {_size(output_bytes)} "
                f"({output_bytes / 1e6 / max(self.seconds, 1e-9):.2f} MB/s of text)",
            ),
            ("time", f"{self.seconds:.1f} s: {stages}"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def prepare_corpus(
    inputs,
    output_dir,
    *,
    input_format=None,
    text_field="text",
    text_layout="blank-line",
    encoding_errors="strict",
    cleaning: CleaningOptions = CleaningOptions(),
    shard_bytes=DEFAULT_SHARD_BYTES,
    num_workers=None,
    overwrite=False,
    show_progress=False,
) -> PrepareSummary:
    """Turn raw inputs into a corpus directory of shards (one sentence per line, a blank line between documents).

    `inputs` are Wikipedia XML dumps, wikiextractor output directories, JSON Lines or plain text files (see
    `reformer_ko.data.sources`); `input_format` applies to all of them, else each one's name decides. Shards of
    about `shard_bytes` (a document is never cut) are named `corpus-00000-of-00003.txt`, …, beside
    `prepare_corpus.json` (the options and this summary). `output_dir` must be new or empty unless `overwrite`.
    """
    if encoding_errors not in ENCODING_ERRORS:
        raise UserInputError(f"encoding_errors must be one of {ENCODING_ERRORS}, not {encoding_errors!r}")
    if shard_bytes < 1:
        raise UserInputError(f"shard_bytes={shard_bytes} must be at least 1")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise SourceError("no input given")
    sources = [(Path(path), input_format or detect_format(path)) for path in inputs]
    input_bytes = sum(file.stat().st_size for path, format_ in sources for file in input_files(path, format_))
    output_dir = Path(output_dir)
    _check_output(output_dir, [path for path, _ in sources], overwrite)

    summary = PrepareSummary(output_dir=str(output_dir), input_bytes=input_bytes)
    splitter = SentenceSplitter(num_workers)
    cleaner = DocumentCleaner(cleaning)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # A name of our own rather than `tempfile.mkdtemp`, whose 0700 mode the published directory would keep.
    staging = output_dir.parent / f".{output_dir.name}.incomplete-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    start = time.perf_counter()
    stages = Counter()
    try:
        with tqdm(
            total=input_bytes, unit="B", unit_scale=True, desc="Preparing corpus", disable=not show_progress
        ) as progress:

            def documents():
                for path, format_ in sources:
                    for document in read_source(
                        path,
                        format_,
                        text_field=text_field,
                        text_layout=text_layout,
                        encoding_errors=encoding_errors,
                        on_read=progress.update if show_progress else None,
                    ):
                        summary.documents_read += 1
                        summary.lines_read += len(document)
                        yield document

            # Each stage's time includes the stages it pulls from; the differences are each stage's own.
            read = _timed(documents(), stages, "read")
            cleaned = _timed((p for p in map(cleaner.clean, read) if p), stages, "read+clean")
            split = _timed(splitter.split_documents(cleaned), stages, "read+clean+split")
            with _ShardWriter(staging, shard_bytes) as writer:
                for sentences in split:
                    started = time.perf_counter()
                    if sentences:
                        writer.write(sentences)
                        summary.documents_written += 1
                        summary.sentences_written += len(sentences)
                    stages["writing"] += time.perf_counter() - started
            summary.files = writer.publish_names()
        summary.dropped = dict(cleaner.counts)
        if not summary.documents_written:
            dropped = "".join(f", {count:,} {name}" for name, count in cleaner.counts.items() if count)
            raise PrepareError(
                f"no document is left to write: {summary.documents_read:,} read{dropped}; check --format and "
                "--text-field, or relax the cleaning options (--min-document-chars)"
            )
        summary.seconds = time.perf_counter() - start
        summary.stage_seconds = dict(
            zip(
                STAGES,
                (
                    stages["read"],
                    stages["read+clean"] - stages["read"],
                    stages["read+clean+split"] - stages["read+clean"],
                    stages["writing"],
                ),
            )
        )
        _write_summary(staging, summary, sources, cleaning, text_field, text_layout)
        _publish(staging, output_dir, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


_END = object()


def _timed(iterable, seconds: Counter, name: str):
    """Yield from `iterable`, adding the time spent waiting for each item to `seconds[name]`."""
    iterator = iter(iterable)
    while True:
        start = time.perf_counter()
        item = next(iterator, _END)
        seconds[name] += time.perf_counter() - start
        if item is _END:
            return
        yield item


class _ShardWriter:
    """Writes documents into `part-N.txt` files of about `shard_bytes` (a context manager: leaving it closes the
    shard being written), then `publish_names` names them `corpus-N-of-M.txt`."""

    def __init__(self, directory: Path, shard_bytes: int):
        self.directory = directory
        self.shard_bytes = shard_bytes
        self.paths = []
        self._file = None
        self._size = 0

    def write(self, sentences: list[str]) -> None:
        data = ("\n".join(sentences) + "\n").encode("utf-8")
        if self._file is None or self._size + 1 + len(data) > self.shard_bytes:
            self._next_shard()
        elif self._size:
            data = b"\n" + data  # the blank line between documents
        self._file.write(data)
        self._size += len(data)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        """Close the shard being written, whether the documents ran out or an error stopped them."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def publish_names(self) -> dict:
        """Give every (closed) shard its final name; returns {name: bytes}."""
        sizes = {}
        for index, path in enumerate(self.paths):
            name = SHARD_NAME.format(index=index, count=len(self.paths))
            path.rename(self.directory / name)
            sizes[name] = (self.directory / name).stat().st_size
        return sizes

    def _next_shard(self):
        if self._file is not None:
            self._file.close()
        self.paths.append(self.directory / f"part-{len(self.paths):05d}.txt")
        self._file = open(self.paths[-1], "wb")
        self._size = 0


def _check_output(output_dir: Path, inputs, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise PrepareError(f"--output {output_dir} is a file; give a directory to write the corpus shards in")
    if overwrite:
        for path in inputs:
            if output_dir.resolve() in (path.resolve(), *path.resolve().parents):
                raise PrepareError(
                    f"input {path} lies inside --output {output_dir}, which --overwrite would delete; "
                    "write the corpus to another directory"
                )
    elif output_dir.is_dir() and any(output_dir.iterdir()):
        raise PrepareError(
            f"--output {output_dir} already holds files; choose a new or empty directory, "
            "or pass --overwrite (overwrite=True) to replace it and everything in it"
        )


def _publish(staging: Path, output_dir: Path, overwrite: bool) -> None:
    """Move the finished staging directory to `output_dir` in one rename, replacing what was there."""
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise PrepareError(
            f"--output {output_dir} received files while the corpus was being prepared; "
            "choose a new directory, or pass --overwrite (overwrite=True)"
        )
    replace_directory(staging, output_dir)


def _write_summary(directory, summary, sources, cleaning, text_field, text_layout):
    record = {
        "inputs": [{"path": str(path), "format": format_} for path, format_ in sources],
        "text_field": text_field,
        "text_layout": text_layout,
        "cleaning": asdict(cleaning),
        "summary": asdict(summary),
    }
    (directory / SUMMARY_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    exponent = min(3, len(str(int(count))) // 3 - (len(str(int(count))) % 3 == 0))
    return f"{count / 1000**exponent:,.1f} {('kB', 'MB', 'GB')[exponent - 1]}"


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMG]?)i?B?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes of a size written as `512K`, `128M`, `1G` (powers of 1024) or a plain number."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"size {text!r} is not a number of bytes with an optional K, M or G, like 128M")
    number, unit = match.groups()
    return int(float(number) * 1024 ** "_KMG".index(unit.upper() or "_"))


def add_prepare_corpus_arguments(parser):
    """Arguments of `reformer-ko prepare-corpus`; returns its handler."""
    parser.description = (
        "Turn Wikipedia dumps, JSON Lines or plain text into a corpus: one sentence per line, a blank line between "
        "documents, in shards of a new directory."
    )
    parser.add_argument(
        "--input", nargs="+", required=True, metavar="PATH",
        help="kowiki-…-pages-articles.xml[.bz2], a wikiextractor output directory, .jsonl or .txt files "
        "(.bz2 and .gz are read as they are)",
    )  # fmt: skip
    parser.add_argument("--output", required=True, metavar="DIR", help="new (or empty) directory for the shards")
    parser.add_argument("--format", choices=FORMATS, help="the inputs' format (default: from each input's name)")
    parser.add_argument(
        "--text-field", default="text",
        help="JSON Lines: the field with the text; a dotted path reaches into objects and lists, "
        "e.g. paragraph.form (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--text-layout", choices=TEXT_LAYOUTS, default="blank-line",
        help="plain text: documents separated by blank lines, or one document per line (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--encoding-errors", choices=ENCODING_ERRORS, default="strict",
        help="on invalid UTF-8: stop, or read it as U+FFFD (default: %(default)s)",
    )  # fmt: skip
    defaults = CleaningOptions()
    cleaning = parser.add_argument_group("cleaning rules")
    cleaning.add_argument(
        "--headings", choices=KEEP_OR_DROP, default=defaults.headings,
        help="wiki section headings (default: %(default)s)",
    )  # fmt: skip
    cleaning.add_argument(
        "--lists", choices=KEEP_OR_DROP, default=defaults.lists, help="wiki list items (default: %(default)s)"
    )
    cleaning.add_argument(
        "--strip-markup", action=argparse.BooleanOptionalAction, default=defaults.strip_markup,
        help="remove references ([1], <ref>), HTML tags and brackets emptied by dropped templates (default: on)",
    )  # fmt: skip
    cleaning.add_argument(
        "--drop-markup-lines", action=argparse.BooleanOptionalAction, default=defaults.drop_markup_lines,
        help="drop lines of table, template, category or file markup, asides wholly in parentheses and lines "
        "without a letter or digit (default: on)",
    )  # fmt: skip
    cleaning.add_argument(
        "--min-document-chars", type=integer_at_least(0), default=defaults.min_document_chars, metavar="N",
        help="drop documents with fewer characters, spaces not counted (default: %(default)s)",
    )  # fmt: skip
    cleaning.add_argument(
        "--deduplicate", action=argparse.BooleanOptionalAction, default=defaults.deduplicate,
        help="drop exact duplicates of an earlier document (default: on)",
    )  # fmt: skip
    parser.add_argument(
        "--shard-size", type=_size_argument, default=DEFAULT_SHARD_BYTES, metavar="SIZE",
        help="largest shard, e.g. 512M or 1G; a document is never cut (default: 128M)",
    )  # fmt: skip
    parser.add_argument(
        "--num-workers", type=integer_at_least(1), metavar="N",
        help="threads for sentence splitting (default: every available core)",
    )  # fmt: skip
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --output and everything in it if it holds files"
    )
    return _prepare_corpus_command


def _size_argument(text):
    try:
        size = parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"a shard holds at least 1 byte, got {text!r}")
    return size


def _prepare_corpus_command(args) -> int:
    """Run `prepare_corpus` with the command's arguments; errors are left to the CLI's error policy."""
    cleaning = CleaningOptions(
        headings=args.headings,
        lists=args.lists,
        strip_markup=args.strip_markup,
        drop_markup_lines=args.drop_markup_lines,
        min_document_chars=args.min_document_chars,
        deduplicate=args.deduplicate,
    )
    summary = prepare_corpus(
        args.input,
        args.output,
        input_format=args.format,
        text_field=args.text_field,
        text_layout=args.text_layout,
        encoding_errors=args.encoding_errors,
        cleaning=cleaning,
        shard_bytes=args.shard_size,
        num_workers=args.num_workers,
        overwrite=args.overwrite,
        show_progress=True,
    )
    print(f"reformer-ko prepare-corpus: summary\n{summary.format()}")
    return 0
