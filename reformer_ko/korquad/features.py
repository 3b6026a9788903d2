"""KorQuAD examples to model inputs: `[CLS] question [SEP] context window [SEP]`, as in transformers' run_qa.py.

Both functions take a batch of examples (columns `id`, `context`, `question`, `answers`) and are meant for
`Dataset.map(..., batched=True, remove_columns=...)`. A long context becomes several windows that overlap by
`doc_stride` tokens (the tokenizer's `stride`, as in run_qa.py), so one example may give several features.

The model reads questions and contexts in NFC; offsets of context tokens are spans of the context as given
(`reformer_ko.data.text.to_nfc`), so labels from `answer_start` and answers cut by post-processing refer to the
user's own characters, decomposed (NFD) Hangul included.
"""

import bisect

from reformer_ko.data.text import strip_invisible, to_nfc
from reformer_ko.errors import UserInputError

# [CLS] question [SEP] context [SEP]
_SPECIAL_TOKENS_IN_PAIR = 3


def _check_lengths(tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"KorQuAD features need a fast tokenizer (for character offsets), got {type(tokenizer).__name__}; "
            "load it with AutoTokenizer.from_pretrained(..., use_fast=True) or use BertTokenizerFast"
        )
    context_room = max_seq_length - max_query_length - _SPECIAL_TOKENS_IN_PAIR
    if not 0 <= doc_stride < context_room:
        raise UserInputError(
            f"doc_stride ({doc_stride}) must be smaller than the room left for the context, "
            f"max_seq_length - max_query_length - 3 = {context_room}; lower doc_stride or max_query_length"
        )


def truncate_questions(questions: list[str], tokenizer, max_query_length: int) -> list[str]:
    """Each question in NFC, stripped and cut after its `max_query_length`-th token, as text.

    Cutting the text rather than the ids keeps the pair a plain fast-tokenizer encoding with true offsets.
    WordPiece matches greedily from the left, so the kept prefix tokenizes to the same tokens.
    """
    questions = [strip_invisible(to_nfc(question).text) for question in questions]
    encodings = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        question[: offsets[max_query_length - 1][1]] if len(offsets) > max_query_length else question
        for question, offsets in zip(questions, encodings["offset_mapping"])
    ]


def _encode_windows(examples, tokenizer, max_seq_length, doc_stride, max_query_length, padding):
    """The windows of the NFC question and context pairs; context token offsets index the contexts as given."""
    _check_lengths(tokenizer, max_seq_length, doc_stride, max_query_length)
    contexts = [to_nfc(context) for context in examples["context"]]
    encoded = tokenizer(
        truncate_questions(examples["question"], tokenizer, max_query_length),
        [context.text for context in contexts],
        truncation="only_second",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
        return_attention_mask=True,
        padding=padding,
    )
    for window, offsets in enumerate(encoded["offset_mapping"]):
        context = contexts[encoded["overflow_to_sample_mapping"][window]]
        if context.changed:
            encoded["offset_mapping"][window] = [
                context.original_span(*offset) if sequence_id == 1 else offset
                for offset, sequence_id in zip(offsets, encoded.sequence_ids(window))
            ]
    return encoded


def _context_token_range(sequence_ids: list) -> tuple[int, int]:
    """First and last token index of the context in a `[CLS] question [SEP] context [SEP]` window."""
    first = sequence_ids.index(1)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
    return first, last


def prepare_train_features(
    examples, tokenizer, *, max_seq_length: int = 512, doc_stride: int = 128, max_query_length: int = 64,
    padding: bool | str = False,
) -> dict:
    """Training windows labelled with the first answer's token span, or `[CLS]` where the window lacks it.

    Returns `input_ids`, `token_type_ids`, `attention_mask`, `start_positions`, `end_positions`.
    """
    encoded = _encode_windows(examples, tokenizer, max_seq_length, doc_stride, max_query_length, padding)
    sample_mapping = encoded.pop("overflow_to_sample_mapping")
    offset_mapping = encoded.pop("offset_mapping")
    start_positions, end_positions = [], []
    for window, offsets in enumerate(offset_mapping):
        cls_index = encoded["input_ids"][window].index(tokenizer.cls_token_id)
        answers = examples["answers"][sample_mapping[window]]
        if not answers["text"]:
            raise UserInputError(
                f"example {examples['id'][sample_mapping[window]]!r} has no answer to train on; "
                "KorQuAD v1.0 training examples need one (load_korquad checks this)"
            )
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        first, last = _context_token_range(encoded.sequence_ids(window))
        if not (offsets[first][0] <= start_char and end_char <= offsets[last][1]):
            start_positions.append(cls_index)
            end_positions.append(cls_index)
            continue
        # Context offsets increase with the token index: the start is the last token starting at or
        # before the answer, the end the first token ending at or after it.
        token_starts = [start for start, _ in offsets[first : last + 1]]
        token_ends = [end for _, end in offsets[first : last + 1]]
        start_positions.append(first + bisect.bisect_right(token_starts, start_char) - 1)
        end_positions.append(first + bisect.bisect_left(token_ends, end_char))
    encoded["start_positions"] = start_positions
    encoded["end_positions"] = end_positions
    return dict(encoded)


def prepare_eval_features(
    examples, tokenizer, *, max_seq_length: int = 512, doc_stride: int = 128, max_query_length: int = 64,
    padding: bool | str = False,
) -> dict:
    """Evaluation windows with the `example_id` they came from and offsets of context tokens only.

    Returns `input_ids`, `token_type_ids`, `attention_mask`, `example_id` and `offset_mapping`, the
    latter `None` outside the context so post-processing can only pick spans inside it.
    """
    encoded = _encode_windows(examples, tokenizer, max_seq_length, doc_stride, max_query_length, padding)
    sample_mapping = encoded.pop("overflow_to_sample_mapping")
    encoded["example_id"] = [examples["id"][sample] for sample in sample_mapping]
    encoded["offset_mapping"] = [
        [offset if sequence_id == 1 else None for offset, sequence_id in zip(offsets, encoded.sequence_ids(window))]
        for window, offsets in enumerate(encoded["offset_mapping"])
    ]
    return dict(encoded)
