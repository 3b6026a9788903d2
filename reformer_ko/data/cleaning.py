"""The cleaning rules of `reformer-ko prepare-corpus`: documents of `Block`s in, lists of clean paragraphs out.

Every rule is an option of `CleaningOptions` with the default Korean LM corpora are usually built with, and
counts what it removed in `DocumentCleaner.counts`. In order, per line: headings and list items kept or
dropped; Unicode NFC; inline markup residue stripped; markup-only lines dropped. Per document: documents left
empty, documents shorter than `min_document_chars`, exact duplicates of an earlier document.

NFC is not an option: it is part of the corpus format. NFKC is deliberately not offered, since it turns Hangul
compatibility jamo (ㅋㅋ, ㅠㅠ) into conjoining jamo, which print and tokenize differently.
"""

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from ..errors import UserInputError
from .sources import HEADING, LIST_ITEM, Block
from .text import strip_invisible

KEEP_OR_DROP = ("drop", "keep")

# The HTML and MediaWiki tags that appear in wiki text and web exports; angle brackets around other words
# (<기생충>, <Star Wars>) are titles, not tags.
_HTML_TAGS = (
    "a", "abbr", "b", "big", "blockquote", "br", "center", "ce", "chem", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "font", "gallery", "hr", "i", "includeonly", "ins", "li", "mapframe", "math", "noinclude",
    "nowiki", "ol", "onlyinclude", "p", "poem", "pre", "ref", "references", "s", "score", "section", "small",
    "source", "span", "strike", "strong", "sub", "sup", "syntaxhighlight", "table", "td", "templatestyles", "th",
    "timeline", "tr", "tt", "u", "ul",
)  # fmt: skip
# Inline residue of markup: references (<ref>…</ref>, [1], [주 2], [출처 필요]), HTML tags, the placeholders
# wikiextractor writes for <math> and <code> (formula_1, codice_1), and brackets emptied by a dropped template,
# as in "가타카나(, , )는", or left with a separator at one end, as in "다양체(多樣體,)는".
_INLINE_MARKUP = re.compile(
    r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>"
    rf"|</?(?:{'|'.join(_HTML_TAGS)})\b[^<>]*>"
    r"|\[\s*(?:\d+|[a-z가-힣]|(?:주|각주|note)\s*\d+|출처 필요|편집|원본 편집|citation needed|edit)\s*\]"
    r"|(?<![A-Za-z])(?:formula|codice)_\d+"
    r"|[(（]\s*[,;:·/、，\s]*[)）]"
    r"|(?<=[(（])\s*[,;、，]\s*|\s*[,;、，]\s*(?=[)）])",
    re.IGNORECASE,
)
_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +([,.!?])")
# Whole lines of markup: table rows and borders, template braces, category and file links.
_MARKUP_LINE = re.compile(
    r"(?:\{\||\|\}|\|-|\||!|\{\{|\}\}|(?:분류|파일|그림|틀|Category|File|Image|Template)\s*:).*|.*\}\}",
    re.IGNORECASE,
)
_OPENING, _CLOSING = "(（", ")）"


@dataclass(frozen=True)
class CleaningOptions:
    """The cleaning rules and their defaults.

    Args:
        headings: "drop" section headings (only wiki markup marks them), or "keep" each as a line.
        lists: "drop" list items (wiki `*`, `#`, `;` lines), or "keep" each as a paragraph.
        strip_markup: remove inline markup residue: references, HTML tags, wikiextractor's formula/code
            placeholders, brackets left empty by dropped templates.
        drop_markup_lines: drop lines that are only markup: table rows, template braces, category and file
            links, asides wholly in parentheses, lines without a letter or a digit.
        min_document_chars: drop documents with fewer characters than this, spaces not counted.
        deduplicate: drop a document whose cleaned text is exactly that of an earlier one.
    """

    headings: str = "drop"
    lists: str = "drop"
    strip_markup: bool = True
    drop_markup_lines: bool = True
    min_document_chars: int = 100
    deduplicate: bool = True

    def __post_init__(self):
        for name in ("headings", "lists"):
            if getattr(self, name) not in KEEP_OR_DROP:
                raise UserInputError(f"{name}={getattr(self, name)!r}: expected one of {', '.join(KEEP_OR_DROP)}")
        if self.min_document_chars < 0:
            raise UserInputError(f"min_document_chars={self.min_document_chars} must be 0 or more")


# The names of the counts, in the order a summary shows them.
HEADINGS_DROPPED = "headings dropped"
LIST_ITEMS_DROPPED = "list items dropped"
MARKUP_STRIPPED = "lines with markup stripped"
MARKUP_LINES_DROPPED = "markup lines dropped"
EMPTY_DOCUMENTS = "empty documents dropped"
SHORT_DOCUMENTS = "short documents dropped"
DUPLICATE_DOCUMENTS = "duplicate documents dropped"
COUNTS = (
    HEADINGS_DROPPED,
    LIST_ITEMS_DROPPED,
    MARKUP_STRIPPED,
    MARKUP_LINES_DROPPED,
    EMPTY_DOCUMENTS,
    SHORT_DOCUMENTS,
    DUPLICATE_DOCUMENTS,
)
DIGEST_BYTES = 16


class DocumentCleaner:
    """Applies `CleaningOptions` to documents one at a time, counting what each rule removed.

    Deduplication keeps a 16-byte BLAKE2b digest of every document kept, never its text, so its memory grows
    with the number of documents (about 100 MB per million), not with their size.
    """

    def __init__(self, options: CleaningOptions = CleaningOptions()):
        self.options = options
        self.counts = Counter(dict.fromkeys(COUNTS, 0))
        self._digests = set()

    def clean(self, document: list[Block]) -> list[str] | None:
        """The document's clean paragraphs, or None when a rule drops the whole document."""
        paragraphs = [text for text in map(self._clean_block, document) if text]
        if not paragraphs:
            self.counts[EMPTY_DOCUMENTS] += 1
            return None
        if sum(len(text) - text.count(" ") for text in paragraphs) < self.options.min_document_chars:
            self.counts[SHORT_DOCUMENTS] += 1
            return None
        if self.options.deduplicate:
            digest = hashlib.blake2b("\n".join(paragraphs).encode("utf-8"), digest_size=DIGEST_BYTES).digest()
            if digest in self._digests:
                self.counts[DUPLICATE_DOCUMENTS] += 1
                return None
            self._digests.add(digest)
        return paragraphs

    def _clean_block(self, block: Block) -> str:
        if block.kind == HEADING and self.options.headings == "drop":
            self.counts[HEADINGS_DROPPED] += 1
            return ""
        if block.kind == LIST_ITEM and self.options.lists == "drop":
            self.counts[LIST_ITEMS_DROPPED] += 1
            return ""
        text = unicodedata.normalize("NFC", block.text)
        if self.options.strip_markup:
            stripped = _INLINE_MARKUP.sub("", text)
            if stripped != text:
                self.counts[MARKUP_STRIPPED] += 1
                text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", stripped))
        text = strip_invisible(text)
        if text and self.options.drop_markup_lines and is_markup_line(text):
            self.counts[MARKUP_LINES_DROPPED] += 1
            return ""
        return text


def is_markup_line(line: str) -> bool:
    """Whether a (stripped) line is markup rather than text: see `CleaningOptions.drop_markup_lines`."""
    return (
        _MARKUP_LINE.fullmatch(line) is not None
        or _is_parenthetical(line)
        or not any(character.isalnum() for character in line)
    )


def _is_parenthetical(line: str) -> bool:
    """Whether the whole line is one aside in parentheses (a note, a pronunciation, a date), not a sentence:
    its first bracket closes at its last character ("(2001년 기준)", not "(가) 본문이다. (나)")."""
    if line[0] not in _OPENING or line[-1] not in _CLOSING:
        return False
    depth = 0
    for index, character in enumerate(line):
        depth += (character in _OPENING) - (character in _CLOSING)
        if depth == 0:
            return index == len(line) - 1
    return False
