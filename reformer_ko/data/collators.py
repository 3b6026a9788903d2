"""Batch collators for packed blocks: dynamic MLM masking and causal-LM labels, padded for LSH buckets.

Reformer's LSH attention needs sequence lengths that are a multiple of `2 * bucket_size`; padding each
batch to that multiple here means the model never pads internally during training.
"""

import numpy as np
from transformers import DataCollatorForLanguageModeling

DEFAULT_PAD_TO_MULTIPLE_OF = 128  # 2 * the default bucket_size of 64


def mlm_collator(
    tokenizer, *, mlm_probability=0.15, pad_to_multiple_of=DEFAULT_PAD_TO_MULTIPLE_OF, whole_word_mask=False, seed=None
):
    """Collator for MLM and ELECTRA blocks: dynamic masking of `mlm_probability` of the tokens.

    Masked tokens become `[MASK]` 80% of the time, a random token 10%, and stay unchanged 10%. With
    `whole_word_mask=True` a word and all its `##` pieces are masked together, always as `[MASK]` (the
    only replacement transformers supports for whole words).
    """
    if whole_word_mask:
        return WordPieceWholeWordMaskCollator(
            tokenizer=tokenizer,
            mlm_probability=mlm_probability,
            pad_to_multiple_of=pad_to_multiple_of,
            whole_word_mask=True,
            mask_replace_prob=1.0,
            random_replace_prob=0.0,
            seed=seed,
        )
    return DataCollatorForLanguageModeling(
        tokenizer=tokenizer, mlm_probability=mlm_probability, pad_to_multiple_of=pad_to_multiple_of, seed=seed
    )


def causal_lm_collator(tokenizer, *, pad_to_multiple_of=DEFAULT_PAD_TO_MULTIPLE_OF):
    """Collator for causal-LM blocks: `labels` are the inputs, with padding set to -100."""
    return DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False, pad_to_multiple_of=pad_to_multiple_of)


class WordPieceWholeWordMaskCollator(DataCollatorForLanguageModeling):
    """Whole-word masking where a word is a token followed by its `##` continuation pieces.

    transformers finds words from the tokenizer's character offsets, which packed blocks do not carry
    (the Trainer would drop such a column, and blocks mix the offsets of several sentences). This
    collator derives offsets from the `##` prefix instead: a continuation piece touches its predecessor,
    every other token leaves a gap. Everything else is transformers' masking.
    """

    def __post_init__(self):
        super().__post_init__()
        vocab = self.tokenizer.get_vocab()
        self._is_continuation = np.zeros(max(vocab.values()) + 1, dtype=bool)
        for token, index in vocab.items():
            self._is_continuation[index] = token.startswith("##")

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        return super().torch_mask_tokens(inputs, special_tokens_mask, self._word_piece_offsets(inputs.numpy()))

    def numpy_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        return super().numpy_mask_tokens(inputs, special_tokens_mask, self._word_piece_offsets(inputs))

    def _word_piece_offsets(self, input_ids):
        positions = np.arange(input_ids.shape[-1])
        starts = 2 * positions - self._is_continuation[input_ids]
        return np.stack([starts, np.broadcast_to(2 * positions + 1, starts.shape)], axis=-1)
