"""Korean sentence splitting with Kiwi (`kiwipiepy`), one paragraph at a time, in order, on several threads.

Kiwi finds sentence ends from its morphological analysis rather than from punctuation alone, so it splits
"…올라간다.고추가 …" and unpunctuated "…이다 그리고 …", and keeps quotes ("…좋아요."라고 말했다), decimals
(1.5kg) and abbreviations (U.S.A.) whole. A sentence never crosses a paragraph: each paragraph is split on its
own. The analysis runs on Kiwi's own threads, which release the GIL, so the text read, extracted and cleaned
in Python overlaps with it.
"""

import functools
import os
from collections import deque
from collections.abc import Iterable, Iterator

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
            raise ValueError(f"num_workers={num_workers} must be at least 1")
        self.num_workers = num_workers or available_cores()
        self._kiwi = _kiwi(self.num_workers)

    def split(self, paragraph: str) -> list[str]:
        """The sentences of one paragraph, each without surrounding spaces."""
        return _texts(self._kiwi.split_into_sents(paragraph, return_sub_sents=False))

    def split_documents(self, documents: Iterable[list[str]]) -> Iterator[list[str]]:
        """The sentences of each document (a list of paragraphs), in order; empty documents are skipped.

        Documents are read lazily: Kiwi keeps a few dozen paragraphs in flight, whatever the input's size.
        """
        sizes = deque()

        def paragraphs():
            for document in documents:
                if document:
                    # Appended before the document's first paragraph reaches Kiwi, so it is there when that
                    # paragraph's result comes back.
                    sizes.append(len(document))
                    yield from document

        sentences, remaining = [], 0
        for result in self._kiwi.split_into_sents(paragraphs(), return_sub_sents=False):
            if not remaining:
                remaining = sizes.popleft()
            sentences += _texts(result)
            remaining -= 1
            if not remaining:
                yield sentences
                sentences = []


def _texts(sentences) -> list[str]:
    return [text for text in (strip_invisible(sentence.text) for sentence in sentences) if text]
