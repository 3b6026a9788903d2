from pathlib import Path

import pytest
import torch

from reformer_ko.data import causal_lm_collator, load_corpus, mlm_collator, pack_causal_blocks, pack_mlm_blocks
from reformer_ko.tokenization import train_tokenizer

KOREAN_CORPUS = Path(__file__).parent / "fixtures" / "korean_corpus.txt"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(KOREAN_CORPUS, tmp_path_factory.mktemp("tokenizer"), vocab_size=300, limit_alphabet=100)


@pytest.fixture(scope="module")
def blocks(tokenizer, tmp_path_factory):
    documents = load_corpus(KOREAN_CORPUS, cache_dir=tmp_path_factory.mktemp("cache"))
    return list(pack_mlm_blocks(documents, tokenizer, 40))


def test_mlm_batches_are_padded_to_a_multiple_of_twice_the_bucket_size(tokenizer, blocks):
    batch = mlm_collator(tokenizer, seed=0)(blocks[:4])
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == (4, 128)
    lengths = [len(block["input_ids"]) for block in blocks[:4]]
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    padding = batch["attention_mask"] == 0
    assert (batch["input_ids"][padding] == tokenizer.pad_token_id).all()


def test_mlm_masks_about_15_percent_of_real_tokens_80_10_10(tokenizer, blocks):
    batch = mlm_collator(tokenizer, seed=0, pad_to_multiple_of=None)(blocks * 40)
    originals = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(block["input_ids"]) for block in blocks * 40],
        batch_first=True,
        padding_value=tokenizer.pad_token_id,
    )
    masked = batch["labels"] != -100
    special = torch.isin(originals, torch.tensor(tokenizer.all_special_ids))
    assert not (masked & special).any()
    assert (batch["labels"][masked] == originals[masked]).all()
    assert masked.sum() / (~special).sum() == pytest.approx(0.15, abs=0.01)
    as_mask_token = (batch["input_ids"] == tokenizer.mask_token_id) & masked
    unchanged = (batch["input_ids"] == originals) & masked
    assert as_mask_token.sum() / masked.sum() == pytest.approx(0.8, abs=0.03)
    assert unchanged.sum() / masked.sum() == pytest.approx(0.1 + 0.1 / len(tokenizer), abs=0.03)


def test_whole_word_masking_masks_every_piece_of_a_word_together(tokenizer, blocks):
    batch = mlm_collator(tokenizer, seed=0, whole_word_mask=True, pad_to_multiple_of=None)(blocks * 10)
    masked = (batch["labels"] != -100).tolist()
    continuation = [
        [token.startswith("##") for token in tokenizer.convert_ids_to_tokens(block["input_ids"])]
        for block in blocks * 10
    ]
    pieces_in_words = 0
    for row_masked, row_continuation in zip(masked, continuation):
        for position in range(1, len(row_continuation)):
            if row_continuation[position]:
                pieces_in_words += 1
                assert row_masked[position] == row_masked[position - 1]
    assert pieces_in_words > 100
    assert (batch["input_ids"][batch["labels"] != -100] == tokenizer.mask_token_id).all()


def test_causal_lm_labels_are_the_inputs_with_padding_ignored(tokenizer, tmp_path):
    documents = load_corpus(KOREAN_CORPUS, cache_dir=tmp_path)
    rows = list(pack_causal_blocks(documents, tokenizer, 100))[:2]
    rows[1] = {key: values[:60] for key, values in rows[1].items()}
    batch = causal_lm_collator(tokenizer)(rows)
    assert batch["input_ids"].shape == (2, 128)
    assert batch["labels"][0, :100].tolist() == rows[0]["input_ids"]
    assert (batch["labels"][0, 100:] == -100).all() and (batch["labels"][1, 60:] == -100).all()


def masked_positions(collator, examples):
    return (collator(examples)["labels"] != -100).nonzero().tolist()


def test_a_batch_seeded_collator_masks_a_batch_alike_within_an_epoch_and_anew_in_the_next(tokenizer):
    from reformer_ko.training.data import BatchSeededCollator

    collator = BatchSeededCollator(mlm_collator(tokenizer, mlm_probability=0.3, pad_to_multiple_of=None), seed=0)
    example = [{"input_ids": [2, *range(10, 40), 3]}]  # a batch of one block, as with per_device_train_batch_size 1
    collator.epoch = 0
    first = masked_positions(collator, example)
    assert masked_positions(collator, example) == first
    collator.epoch = 1
    assert masked_positions(collator, example) != first
    collator.epoch = None  # evaluation: the same masks all run
    assert masked_positions(collator, example) == masked_positions(collator, example)


def test_pretraining_masks_a_block_anew_every_epoch(tokenizer, tmp_path):
    from tiny_models import tiny_config
    from transformers import TrainingArguments

    from reformer_ko import ReformerKoForMaskedLM
    from reformer_ko.training import MASKED_LM, BatchSeededCollator, PretrainingTrainer

    class RecordingCollator(BatchSeededCollator):
        masks = []

        def __call__(self, examples):
            batch = super().__call__(examples)
            self.masks.append((batch["labels"] != -100).nonzero().tolist())
            return batch

    collator = RecordingCollator(mlm_collator(tokenizer, mlm_probability=0.3, pad_to_multiple_of=32), seed=0)
    args = TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=3, per_device_train_batch_size=1, report_to="none", use_cpu=True,
        disable_tqdm=True, save_strategy="no",
    )  # fmt: skip
    PretrainingTrainer(
        model=ReformerKoForMaskedLM(tiny_config(vocab_size=len(tokenizer))), args=args, data_collator=collator,
        train_dataset=[{"input_ids": [2, *range(10, 40), 3]}], task=MASKED_LM,
    ).train()  # fmt: skip
    first, second, third = collator.masks
    assert first != second and second != third and first != third
