"""Raw text sources → documents, streamed: Wikipedia XML dumps, wikiextractor output, JSON Lines, plain text.

A document is a list of `Block`s, one per line of text: a paragraph, a heading or a list item, as the source
marks them (only wiki markup tells headings and list items apart; every other source gives paragraphs). No
reader holds more than one document in memory. Files ending in `.bz2` or `.gz` are decompressed on the fly.

Wikipedia dumps (`pages-articles`, `.xml` or `.xml.bz2`) are parsed page by page with `xml.etree.ElementTree`;
articles (namespace 0, not redirects) are turned into text by wikiextractor's `clean` (tables, references,
links, HTML, bold and italics), with templates dropped rather than expanded: expanding them needs a first pass
over the whole dump to collect their definitions, and what they add to an article is mostly infobox and
navigation text that cleaning would drop anyway.
"""

import bz2
import contextlib
import gzip
import io
import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from ..errors import UserInputError
from .text import is_blank, strip_invisible

FORMATS = ("wiki-dump", "wiki-extracted", "jsonl", "text")
TEXT_LAYOUTS = ("blank-line", "line")
PARAGRAPH, HEADING, LIST_ITEM = "paragraph", "heading", "list item"

_COMPRESSED_SUFFIXES = {".bz2": "bz2", ".gz": "gzip"}
_FORMAT_SUFFIXES = {".xml": "wiki-dump", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".txt": "text"}
_WIKI_HEADING = re.compile(r"(={2,6})\s*(.*?)\s*\1\s*")
_WIKI_LIST_MARKS = "*#;"


class Block(NamedTuple):
    """One line of a document: its text and what it is (`PARAGRAPH`, `HEADING` or `LIST_ITEM`)."""

    kind: str
    text: str


class SourceError(UserInputError):
    """An input that cannot be read as the format it was given as; the message names the file and what to do."""


def detect_format(path) -> str:
    """The input format of `path` from its name: a directory is wikiextractor output, else the file's suffix."""
    path = Path(path)
    if path.is_dir():
        return "wiki-extracted"
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED_SUFFIXES:
        suffixes.pop()
    if suffixes and suffixes[-1] in _FORMAT_SUFFIXES:
        return _FORMAT_SUFFIXES[suffixes[-1]]
    raise SourceError(
        f"cannot tell the format of {path} from its name (expected .xml[.bz2], .jsonl, .txt or a directory); "
        f"pass --format with one of {', '.join(FORMATS)}"
    )


def input_files(path, input_format) -> list[Path]:
    """The files an input reads: itself, or for wikiextractor output every non-hidden file below it, sorted."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if input_format != "wiki-extracted":
        if path.is_dir():
            raise SourceError(f"{path} is a directory; as {input_format} input, give the files in it")
        return [path]
    if not path.is_dir():
        raise SourceError(f"{path} is not a directory; wikiextractor output is the directory given to its -o")
    files = sorted(
        file
        for file in path.rglob("*")
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    if not files:
        raise SourceError(f"{path} holds no files; give the directory wikiextractor wrote (its -o)")
    return files


def read_source(
    path,
    input_format,
    *,
    text_field="text",
    text_layout="blank-line",
    encoding_errors="strict",
    on_read: Callable[[int], None] | None = None,
) -> Iterator[list[Block]]:
    """Yield the documents of one input, each a list of `Block`s; `on_read(n)` is told of every n bytes read."""
    if input_format not in FORMATS:
        raise SourceError(f"unknown input format {input_format!r}; expected one of {', '.join(FORMATS)}")
    if text_layout not in TEXT_LAYOUTS:
        raise SourceError(f"unknown text layout {text_layout!r}; expected one of {', '.join(TEXT_LAYOUTS)}")
    for file in input_files(path, input_format):
        with _open_input(file, on_read) as stream, _decompression_errors(file):
            if input_format == "wiki-dump":
                yield from _wiki_dump_documents(stream, file)
            elif input_format == "wiki-extracted":
                yield from _extracted_documents(_decoded_lines(stream, file, encoding_errors), file)
            elif input_format == "jsonl":
                yield from _jsonl_documents(_decoded_lines(stream, file, encoding_errors), file, text_field)
            else:
                yield from _text_documents(_decoded_lines(stream, file, encoding_errors), text_layout)


# Opening, decompressing, decoding -----------------------------------------------------------------------------


class _CountingFile(io.FileIO):
    """A file on disk that reports every read, for a progress bar over the input's bytes."""

    def __init__(self, path, on_read):
        super().__init__(path, "rb")
        self._on_read = on_read

    def readinto(self, buffer):
        count = super().readinto(buffer)
        if count:
            self._on_read(count)
        return count

    def read(self, size=-1):
        data = super().read(size)
        if data:
            self._on_read(len(data))
        return data


@contextlib.contextmanager
def _open_input(path, on_read):
    """A binary stream of the file's content, decompressed when its name ends in .bz2 or .gz."""
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(_CountingFile(path, on_read) if on_read else open(path, "rb", buffering=0))
        compression = _COMPRESSED_SUFFIXES.get(Path(path).suffix.lower())
        if compression == "bz2":
            stream = stack.enter_context(bz2.BZ2File(raw))
        elif compression == "gzip":
            stream = stack.enter_context(gzip.GzipFile(fileobj=raw))
        else:
            stream = stack.enter_context(io.BufferedReader(raw, 2**20))
        yield stream


@contextlib.contextmanager
def _decompression_errors(path):
    """Turn the decompressors' errors into a `SourceError` naming the file."""
    compression = _COMPRESSED_SUFFIXES.get(Path(path).suffix.lower())
    try:
        yield
    except EOFError:
        if compression is None:
            raise
        raise SourceError(
            f"{path}: the {compression} data ends early (the file is truncated); download or copy it again"
        ) from None
    except OSError as error:
        if compression is None or not re.search(r"invalid data stream|not a gzipped file", str(error), re.I):
            raise
        raise SourceError(
            f"{path} is not {compression}-compressed although its name says so ({error}); rename or recompress it"
        ) from None


def _decoded_lines(stream, path, encoding_errors) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, decoded as UTF-8; a byte-order mark at the start is dropped."""
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8", errors=encoding_errors)
        except UnicodeDecodeError as error:
            raise SourceError(
                f"{path}:{number}: invalid UTF-8 at byte {error.start} of the line; "
                "pass --encoding-errors replace to read it as U+FFFD"
            ) from None
        yield number, line.removeprefix("\ufeff") if number == 1 else line


def _paragraphs(text) -> list[Block]:
    """Every non-blank line of `text` as a paragraph (any Unicode line break ends a line)."""
    return [Block(PARAGRAPH, line) for line in text.splitlines() if not is_blank(line)]


# Plain text and JSON Lines ------------------------------------------------------------------------------------


def _text_documents(lines, layout) -> Iterator[list[Block]]:
    document = []
    for _, line in lines:
        if layout == "line":
            if not is_blank(line):
                yield _paragraphs(line)
            continue
        if is_blank(line):
            if document:
                yield document
                document = []
        else:
            document.extend(_paragraphs(line))
    if document:
        yield document


def _jsonl_documents(lines, path, text_field) -> Iterator[list[Block]]:
    keys = text_field.split(".")
    first = True
    for number, line in lines:
        if is_blank(line):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise SourceError(
                f"{path}:{number}: not valid JSON ({error.msg}); a JSON Lines file holds one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise SourceError(f"{path}:{number}: a {type(record).__name__}, not a JSON object with a text field")
        value = _field(record, keys)
        if value is _MISSING and first:
            fields = ", ".join(map(repr, record)) or "none"
            raise SourceError(
                f"{path}:{number}: no field {text_field!r} (the first record has {fields}); "
                "pass --text-field with the one that holds the text (a dotted path reaches into objects)"
            )
        first = False
        texts = _texts(value)
        if texts is None:
            raise SourceError(
                f"{path}:{number}: field {text_field!r} holds {type(value).__name__}, not text; "
                "pass --text-field with a field of strings (or lists of strings)"
            )
        yield [block for text in texts for block in _paragraphs(text)]


_MISSING = object()


def _field(value, keys):
    """The value at the dotted path `keys`; lists on the way are mapped over (`paragraph.form` of Modu)."""
    for key in keys:
        if isinstance(value, list):
            value = [_field(item, [key]) for item in value]
        elif isinstance(value, dict):
            value = value.get(key, _MISSING)
        else:
            return _MISSING
    return value


def _texts(value):
    """The strings in a field's value (a string, or nested lists of strings); None for anything else.

    A record without the field, or with null, has no text: it reads as an empty document."""
    if value is _MISSING or value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        texts = [_texts(item) for item in value]
        return None if any(item is None for item in texts) else [text for item in texts for text in item]
    return None


# wikiextractor output -----------------------------------------------------------------------------------------


def _extracted_documents(lines, path) -> Iterator[list[Block]]:
    """Documents of one wikiextractor output file, JSON lines (`--json`) or `<doc …>` blocks (the default)."""
    document = None
    layout = None
    for number, line in lines:
        if layout is None:
            if is_blank(line):
                continue
            layout = "json" if line.lstrip().startswith("{") else "doc"
            if layout == "doc" and not line.lstrip().startswith("<doc"):
                raise SourceError(
                    f"{path}:{number}: not wikiextractor output (expected a <doc …> line or a JSON object); "
                    "give the directory that wikiextractor's -o wrote, or pass --format for what it is"
                )
        if layout == "json":
            yield from _jsonl_documents([(number, line)], path, "text")
        elif line.startswith("<doc"):
            document, title_seen = [], False
        elif line.startswith("</doc>"):
            if document is not None:
                yield document
            document = None
        elif document is not None and not is_blank(line):
            # The first line of a <doc> block is the article's title.
            if title_seen:
                document.extend(_paragraphs(line))
            title_seen = True
    if document is not None:
        raise SourceError(f"{path}: the last <doc> block has no </doc> (the file is truncated); extract it again")


# MediaWiki XML dumps ------------------------------------------------------------------------------------------


def _wiki_dump_documents(stream, path) -> Iterator[list[Block]]:
    # wikiextractor is AGPL-3.0: an optional dependency (the `wiki` extra), imported only to read dumps.
    try:
        from wikiextractor.extract import Extractor, clean
    except ImportError:
        raise SourceError(
            f"reading the Wikipedia dump {path} needs wikiextractor, which is installed on request (it is AGPL-3.0): "
            "pip install 'reformer-ko[wiki]'"
        ) from None

    root = None
    try:
        for event, element in ElementTree.iterparse(stream, events=("start", "end")):
            if root is None:
                root = element
                if _local_name(root.tag) != "mediawiki":
                    raise SourceError(
                        f"{path} is not a MediaWiki XML dump (its root element is <{_local_name(root.tag)}>, "
                        "not <mediawiki>); download a pages-articles dump, e.g. kowiki-latest-pages-articles.xml.bz2"
                    )
                continue
            if event != "end" or _local_name(element.tag) != "page":
                continue
            page = {_local_name(child.tag): child for child in element}
            namespace = page["ns"].text if "ns" in page else "0"
            revision = page.get("revision")
            text = None if revision is None else revision.find("{*}text")
            if namespace == "0" and "redirect" not in page and text is not None and text.text:
                extractor = Extractor(page["id"].text, "", "", page["title"].text or "", [])
                yield _wiki_blocks(clean(extractor, text.text, expand_templates=False, html_safe=False))
            # The page is done: drop it from the tree so that memory stays flat over the dump.
            root.clear()
    except ElementTree.ParseError as error:
        line, column = error.position
        if root is None:
            raise SourceError(
                f"{path} is not a MediaWiki XML dump (not XML: {error.msg} at line {line}); "
                "download a pages-articles dump, e.g. kowiki-latest-pages-articles.xml.bz2"
            ) from None
        raise SourceError(
            f"{path}: the XML breaks off at line {line}, column {column} ({error.msg}): the dump is truncated or "
            "damaged; download it again"
        ) from None
    if root is None:
        raise SourceError(f"{path} is empty; download a pages-articles dump, e.g. kowiki-latest-pages-articles.xml.bz2")


def _local_name(tag) -> str:
    return tag.rpartition("}")[2]


def _wiki_blocks(text) -> list[Block]:
    """wikiextractor's cleaned text of one article as blocks: `== x ==` headings, `*`/`#`/`;` list items."""
    blocks = []
    for line in text.splitlines():
        line = strip_invisible(line)
        if not line:
            continue
        heading = _WIKI_HEADING.fullmatch(line)
        if heading:
            blocks.append(Block(HEADING, heading.group(2)))
        elif line[0] in _WIKI_LIST_MARKS:
            blocks.append(Block(LIST_ITEM, line.lstrip(_WIKI_LIST_MARKS + ": ")))
        else:
            # A `:` indent is layout, not structure: the line is a paragraph.
            blocks.append(Block(PARAGRAPH, line.lstrip(": ")))
    return [block for block in blocks if block.text]
