#!/usr/bin/env python
"""Pretrain a Korean Reformer masked language model (BERT-style, no next-sentence prediction) on a corpus.

    python examples/run_mlm.py --config_preset mlm-small --tokenizer_name tokenizer/ \
        --train_file corpus/ --do_train --do_eval --output_dir mlm-small

Arguments are transformers' `TrainingArguments` plus the two dataclasses below (see `--help`), or a single JSON
file holding them all. The same command runs on several processes under `accelerate launch` or `torchrun`.
"""

from dataclasses import dataclass, field

from transformers import TrainingArguments, set_seed

from reformer_ko import ReformerKoForMaskedLM
from reformer_ko.data import mlm_collator, pack_mlm_blocks
from reformer_ko.training import (
    MASKED_LM,
    BatchSeededCollator,
    CorpusArguments,
    ModelArguments,
    PretrainingTrainer,
    block_length,
    describe_data,
    distributed_defaults,
    load_documents,
    load_pretraining_tokenizer,
    parse_arguments,
    pretraining_model,
    select_samples,
    setup_logging,
    train_and_evaluate,
)


@dataclass
class DataTrainingArguments(CorpusArguments):
    max_seq_length: int | None = field(
        default=None,
        metadata={
            "help": "Longest block in tokens, [CLS] and [SEP] included; defaults to the model's max_position_embeddings."
        },
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "Fraction of the tokens masked in each block."})
    whole_word_mask: bool = field(
        default=False, metadata={"help": "Mask whole words (a token and its ## pieces) together, always as [MASK]."}
    )


def main(args=None):
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataTrainingArguments, TrainingArguments), args
    )
    setup_logging(training_args)
    set_seed(training_args.seed)

    tokenizer = load_pretraining_tokenizer(model_args)
    model = pretraining_model(ReformerKoForMaskedLM, model_args, tokenizer, new_config_fields={"is_decoder": False})

    documents = load_documents(data_args, seed=training_args.seed, cache_dir=model_args.cache_dir)
    max_seq_length = block_length(data_args.max_seq_length, model.config, tokenizer)
    with training_args.main_process_first(desc="packing the corpus into blocks"):
        blocks = {
            split: pack_mlm_blocks(
                split_documents,
                tokenizer,
                max_seq_length,
                num_proc=data_args.preprocessing_num_workers,
                model_max_length=model.config.max_position_embeddings,
            )
            for split, split_documents in documents.items()
        }
    blocks = select_samples(blocks, data_args)

    collator = mlm_collator(
        tokenizer,
        mlm_probability=data_args.mlm_probability,
        pad_to_multiple_of=2 * model.config.bucket_size,
        whole_word_mask=data_args.whole_word_mask,
    )
    trainer = PretrainingTrainer(
        model=model,
        args=distributed_defaults(training_args, model.config),
        train_dataset=blocks.get("train") if training_args.do_train else None,
        eval_dataset=blocks.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=BatchSeededCollator(collator, seed=training_args.seed),
        task=MASKED_LM,
        training_data=describe_data(data_args, documents, blocks, max_seq_length),
    )
    train_and_evaluate(trainer)


if __name__ == "__main__":
    main()
