"""A deterministic WordPiece trainer: the same words and options give the same vocabulary, in the same id order.

It learns what `tokenizers.trainers.WordPieceTrainer` learns (BPE merges over words, `##` marking a piece that
continues a word), with every choice that trainer leaves to hash-map order made by a fixed rule:

- the alphabet keeps the `limit_alphabet` most frequent characters, ties going to the smaller code point;
- ids: the special tokens, the alphabet by code point, the `##` forms of the characters seen inside words by
  code point, then each new piece in the order it is merged;
- each merge takes the most frequent adjacent pair, ties going to the pair of smaller ids (left, then right),
  the rule of `tokenizers`, which so prefers pieces that start a word.

`tokenizers` (0.23) keeps words, characters and pairs in Rust hash maps seeded at random in every process. Their
iteration order decides which of the characters tied at the alphabet limit are kept and the ids of the `##`
pieces, and through those ids which of two equally frequent pairs is merged first. No setting reaches those
seeds: one thread (`RAYON_NUM_THREADS=1`) still gives a different vocabulary in every process.
"""

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

# Characters handed to the Rust normaliser and pre-tokeniser per call: the per-call cost is gone at this size,
# and larger chunks measured slower (their word lists outgrow the CPU caches).
_CHUNK_CHARACTERS = 2**14


def count_words(texts: Iterable[str], backend) -> Counter:
    """How often each word occurs in `texts`, words as `backend`'s normaliser and pre-tokeniser produce them.

    Texts are joined with newlines into larger chunks before normalising: a newline ends a word, becomes a
    space under BERT's normaliser and stops NFC from composing across it, so the words are those of each text
    on its own.
    """
    counts = Counter()
    chunk, size = [], 0
    for text in texts:
        chunk.append(text)
        size += len(text) + 1
        if size >= _CHUNK_CHARACTERS:
            counts.update(_words(backend, "\n".join(chunk)))
            chunk, size = [], 0
    if chunk:
        counts.update(_words(backend, "\n".join(chunk)))
    return counts


def _words(backend, text: str) -> list[str]:
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(text)]


def train_wordpiece_vocabulary(
    word_counts: Mapping[str, int],
    *,
    vocab_size: int,
    special_tokens: Iterable[str],
    limit_alphabet: int | None = None,
    min_frequency: int = 0,
    continuing_subword_prefix: str = "##",
    progress=None,
) -> list[str]:
    """The WordPiece vocabulary of `word_counts`, tokens in id order (see the module docstring for the rules).

    Merging stops when the vocabulary has `vocab_size` tokens or no pair occurs `min_frequency` times (and at
    least once). The alphabet always enters whole, so a `vocab_size` smaller than it gives a larger vocabulary.
    A merge whose piece is already in the vocabulary (from another pair) is made without a new token.
    `progress`, if given, has an `update(n)` method and is told of each new token.
    """
    vocabulary = list(dict.fromkeys(special_tokens))
    token_ids = {token: index for index, token in enumerate(vocabulary)}

    def add(token: str) -> int:
        if token not in token_ids:
            token_ids[token] = len(vocabulary)
            vocabulary.append(token)
            if progress is not None:
                progress.update(1)
        return token_ids[token]

    # Sorted words give the same internal order whatever order the counts came in.
    words = sorted(word for word, count in word_counts.items() if word and count > 0)
    frequencies = [word_counts[word] for word in words]
    alphabet = _alphabet(words, frequencies, limit_alphabet)
    for character in sorted(alphabet):
        add(character)
    inside = sorted({character for word in words for character in word[1:] if character in alphabet})
    for character in inside:
        add(continuing_subword_prefix + character)
    # A character outside the alphabet is left out of its word; the word's first character (even when left out)
    # is what makes every later one a continuation, as in `tokenizers`.
    initial = {character: token_ids[character] for character in alphabet}
    continuing = {character: token_ids[continuing_subword_prefix + character] for character in inside}
    symbols = [
        ([initial[word[0]]] if word[0] in initial else []) + [continuing[c] for c in word[1:] if c in continuing]
        for word in words
    ]

    pair_counts = defaultdict(int)
    pair_words = defaultdict(set)
    for index, (word, frequency) in enumerate(zip(symbols, frequencies)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += frequency
            pair_words[pair].add(index)
    # Entries are (-count, left id, right id): the most frequent pair first, then the smallest ids. An entry's
    # count may be stale: a count that rises gets a new entry and one that falls does not, so an entry popped
    # with an out-of-date count goes back in with its current count, and the first current entry popped is the best.
    queue = [(-count, a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(queue)
    least = max(min_frequency, 1)
    while len(vocabulary) < vocab_size and queue:
        negative_count, a, b = heapq.heappop(queue)
        count = pair_counts.get((a, b), 0)
        if count != -negative_count:
            if count > 0:
                heapq.heappush(queue, (-count, a, b))
            continue
        if count < least:
            break
        merged = add(vocabulary[a] + vocabulary[b].removeprefix(continuing_subword_prefix))
        changes = _merge(symbols, frequencies, pair_words.pop((a, b)), a, b, merged, pair_words)
        for pair, change in changes.items():
            if change:
                pair_counts[pair] += change
                if change > 0:
                    heapq.heappush(queue, (-pair_counts[pair], *pair))
        del pair_counts[(a, b)]
    return vocabulary


def _alphabet(words: list[str], frequencies: list[int], limit: int | None) -> set[str]:
    """The `limit` most frequent characters (all when `limit` is None), ties going to the smaller code point."""
    character_counts = defaultdict(int)
    for word, frequency in zip(words, frequencies):
        for character in word:
            character_counts[character] += frequency
    ranked = sorted(character_counts, key=lambda character: (-character_counts[character], character))
    return set(ranked if limit is None else ranked[:limit])


def _merge(symbols, frequencies, indices, a, b, merged, pair_words) -> dict:
    """Replace `a b` by `merged` in the words at `indices`, left to right; the change in each pair's count.

    `pair_words` gains the words where a pair with `merged` now occurs; words where a pair no longer occurs stay
    listed under it (merging finds nothing there).
    """
    changes = defaultdict(int)
    for index in indices:
        word = symbols[index]
        last = len(word) - 1
        try:
            position = word.index(a, 0, last)
        except ValueError:  # the pair is no longer in this word
            continue
        new_word = word[:position]
        while position <= last:
            if position < last and word[position] == a and word[position + 1] == b:
                new_word.append(merged)
                position += 2
            else:
                new_word.append(word[position])
                position += 1
        if len(new_word) == len(word):
            continue
        frequency = frequencies[index]
        for pair in zip(word, word[1:]):
            changes[pair] -= frequency
        for pair in zip(new_word, new_word[1:]):
            changes[pair] += frequency
            if merged in pair:
                pair_words[pair].add(index)
        symbols[index] = new_word
    return changes
