"""Text as every reader sees it: the one definition of "blank" and of a line's content, and NFC text that
remembers where each of its characters came from.

A character is invisible when it is whitespace (any Unicode space, `str.isspace`), a format character (category
Cf: the byte-order mark U+FEFF, zero-width spaces and joiners, soft hyphens) or a control character (Cc). A line
made only of invisible characters is blank: it separates documents and holds no sentence. Python's `str.strip()`
knows Unicode spaces but not format characters, and `bytes.strip()` knows ASCII only, so neither is used alone.

Models see text in NFC (composed Hangul), but a user's text may be decomposed (NFD: one syllable written as two or
three jamo), and `tokenizers` offsets of text its normaliser composes point at the first jamo only. `to_nfc` composes
the text before it is tokenised and maps spans of the composed text back to the user's characters.
"""

import unicodedata
from typing import NamedTuple

_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc"})


def is_invisible(character: str) -> bool:
    """Whether `character` prints nothing: whitespace, a format (Cf) or a control (Cc) character."""
    return character.isspace() or unicodedata.category(character) in _INVISIBLE_CATEGORIES


def strip_invisible(line: str) -> str:
    """`line` without the invisible characters at either end (the line's content)."""
    line = line.strip()
    # The common line: `str.strip` removed the spaces, and printable ends are neither format nor control
    # characters (`str.isprintable` is False for both), so there is nothing more to remove.
    if not line or (line[0].isprintable() and line[-1].isprintable()):
        return line
    start, end = 0, len(line)
    while start < end and is_invisible(line[start]):
        start += 1
    while end > start and is_invisible(line[end - 1]):
        end -= 1
    return line[start:end]


def is_blank(line: str) -> bool:
    """Whether `line` holds no visible character (see the module docstring)."""
    return not strip_invisible(line)


class NfcText(NamedTuple):
    """`original` in NFC (`text`), with the span of `original` that each character of `text` came from."""

    original: str
    text: str
    # starts[k]:ends[k] is the span of `original` behind text[k]: the character itself where NFC left it alone,
    # else the whole run of characters that NFC composed or reordered together. None when `original` is NFC.
    starts: list[int] | None
    ends: list[int] | None

    @property
    def changed(self) -> bool:
        """Whether NFC changed the text (else every span maps to itself)."""
        return self.starts is not None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of `original` behind `text[start:end]`, widened to whole characters of the original."""
        if not self.changed:
            return start, end
        if start >= end:
            position = self.starts[start] if start < len(self.starts) else len(self.original)
            return position, position
        return self.starts[start], self.ends[end - 1]


def to_nfc(text: str) -> NfcText:
    """`text` in NFC, with the way back from spans of the NFC text to spans of `text` (`NfcText.original_span`)."""
    if unicodedata.is_normalized("NFC", text):
        return NfcText(text, text, None, None)
    pieces, starts, ends = [], [], []
    segment_start = 0
    for position in range(1, len(text) + 1):
        if position < len(text) and not _starts_segment(text, segment_start, position):
            continue
        segment = text[segment_start:position]
        composed = unicodedata.normalize("NFC", segment)
        if composed == segment:
            starts.extend(range(segment_start, position))
            ends.extend(range(segment_start + 1, position + 1))
        else:
            starts.extend([segment_start] * len(composed))
            ends.extend([position] * len(composed))
        pieces.append(composed)
        segment_start = position
    return NfcText(text, "".join(pieces), starts, ends)


def _starts_segment(text: str, segment_start: int, position: int) -> bool:
    """Whether NFC treats `text[position]` apart from the segment before it: a starter (combining class 0) that
    composes with nothing before it. Hangul vowel and final jamo are starters that do compose with the syllable
    before them; a starter stops any later character from composing across it."""
    character = text[position]
    if unicodedata.combining(character):
        return False
    segment = text[segment_start:position]
    return unicodedata.normalize("NFC", segment + character) == unicodedata.normalize(
        "NFC", segment
    ) + unicodedata.normalize("NFC", character)
