"""Korean sentence splitting with Kiwi (`kiwipiepy`), one paragraph at a time, in order, on several threads.

Kiwi finds sentence ends from its morphological analysis rather than from punctuation alone, so it splits
"…올라간다.고추가 …" and unpunctuated "…이다 그리고 …", and keeps quotes ("…좋아요."라고 말했다), decimals
(1.5kg) and abbreviations (U.S.A.) whole. A sentence never crosses a paragraph: each paragraph is split on its
own. The analysis runs on Kiwi's own threads, which release the GIL, so the text read, extracted and cleaned
in Python overlaps with it.

Kiwi misplaces two kinds of boundary next to brackets and quotes (its author advises fixing them afterwards), and
`sentence_texts` moves them back: an opening bracket left at the end of a sentence ("따랐다.(" + "다만 … 없다.)")
goes to the sentence it opens, and a boundary inside a word that no sentence-final punctuation precedes
("그는 말했다. 《책》" + "을 읽었다.") moves back to the sentence end before it, or goes.
"""

import functools
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator

from ..errors import UserInputError
from .text import strip_invisible


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _kiwi(num_workers):
    from kiwipiepy import Kiwi

    # The typo and multi-word dictionaries serve tokenization, not sentence ends; without them Kiwi loads faster
    # and analyses a little faster.
    kiwi = Kiwi(num_workers=num_workers, load_typo_dict=False, load_multi_dict=False)
    # Kiwi loads its model on first use; load it now rather than inside the first document's time.
    kiwi.split_into_sents("")
    return kiwi


class SentenceSplitter:
    """Splits paragraphs into sentences with Kiwi on `num_workers` threads (default: every available core)."""

    def __init__(self, num_workers: int | None = None):
        if num_workers is not None and num_workers < 1:
            raise UserInputError(f"num_workers={num_workers} must be at least 1")
        self.num_workers = num_workers or available_cores()
        self._kiwi = _kiwi(self.num_workers)

    def split(self, paragraph: str) -> list[str]:
        """The sentences of one paragraph, each without surrounding spaces."""
        return sentence_texts(paragraph, self._kiwi.split_into_sents(paragraph, return_sub_sents=False))

    def split_documents(self, documents: Iterable[list[str]]) -> Iterator[list[str]]:
        """The sentences of each document (a list of paragraphs), in order; empty documents are skipped.

        Documents are read lazily: Kiwi keeps a few dozen paragraphs in flight, whatever the input's size.
        """
        sizes, pending = deque(), deque()

        def paragraphs():
            for document in documents:
                if document:
                    # Appended before they reach Kiwi, so they are there when the paragraph's result comes back.
                    sizes.append(len(document))
                    for paragraph in document:
                        pending.append(paragraph)
                        yield paragraph

        sentences, remaining = [], 0
        for result in self._kiwi.split_into_sents(paragraphs(), return_sub_sents=False):
            if not remaining:
                remaining = sizes.popleft()
            sentences += sentence_texts(pending.popleft(), result)
            remaining -= 1
            if not remaining:
                yield sentences
                sentences = []


_OPENING_MARKS = "([{（［《〈「『“‘"
_CLOSING_MARKS = ")]}）］》〉」』”’\"'"
_FINAL_PUNCTUATION = ".!?…。！？"
# Where a sentence can end inside a cut-off piece: final punctuation, closing marks, then a space or an opening mark.
_SENTENCE_END = re.compile(
    rf"[{re.escape(_FINAL_PUNCTUATION)}][{re.escape(_CLOSING_MARKS)}]*(?:\s+|(?=[{re.escape(_OPENING_MARKS)}]))"
)


def sentence_texts(paragraph: str, sentences) -> list[str]:
    """The texts of Kiwi's `sentences` of `paragraph`, their boundaries repaired (see the module docstring)."""
    cuts, start = [], 0
    for sentence in sentences[1:]:
        cut = sentence.start
        while cut > start and paragraph[cut - 1] in _OPENING_MARKS:
            cut -= 1
        left = paragraph[start:cut]
        if 0 < cut < len(paragraph) and not paragraph[cut - 1].isspace() and _is_hangul(paragraph[cut]):
            if not left.rstrip(_CLOSING_MARKS).endswith(tuple(_FINAL_PUNCTUATION)):
                ends = list(_SENTENCE_END.finditer(left))
                if not ends:
                    continue
                cut = start + ends[-1].end()
        if cut > start:
            cuts.append(cut)
            start = cut
    bounds = [0, *cuts, len(paragraph)]
    texts = (strip_invisible(paragraph[begin:end]) for begin, end in zip(bounds, bounds[1:]))
    return [text for text in texts if text]


def _is_hangul(character: str) -> bool:
    return "가" <= character <= "힣"
