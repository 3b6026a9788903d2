#!/usr/bin/env python
"""Pretrain a Korean Reformer ELECTRA model (replaced-token detection) on a corpus.

    python examples/run_electra.py --config_preset electra-small-discriminator --tokenizer_name tokenizer/ \
        --train_file corpus/ --do_train --do_eval --output_dir electra-small

A generator (a masked LM a third as wide, by default) fills the masked tokens with samples; the discriminator
learns which tokens were replaced. The output directory is the discriminator, a standalone checkpoint to
fine-tune (e.g. with `AutoModelForQuestionAnswering`); the generator is saved in its `generator/` folder.
Arguments are transformers' `TrainingArguments` plus the dataclasses below (see `--help`), or a single JSON file.
"""

from dataclasses import dataclass, field

from transformers import TrainingArguments, set_seed

from reformer_ko.data import mlm_collator, pack_mlm_blocks
from reformer_ko.electra import DEFAULT_DISCRIMINATOR_LOSS_WEIGHT, DEFAULT_GENERATOR_SIZE_RATIO, ElectraPretrainingModel
from reformer_ko.training import (
    ELECTRA,
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
class ElectraArguments:
    generator_size_ratio: float = field(
        default=DEFAULT_GENERATOR_SIZE_RATIO,
        metadata={
            "help": "Width of a new generator as a fraction of the discriminator's (same depth, shared embeddings)."
        },
    )
    discriminator_loss_weight: float = field(
        default=DEFAULT_DISCRIMINATOR_LOSS_WEIGHT,
        metadata={"help": "Weight of the discriminator loss in the total loss (the generator loss has weight 1)."},
    )


@dataclass
class DataTrainingArguments(CorpusArguments):
    max_seq_length: int | None = field(
        default=None,
        metadata={
            "help": "Longest block in tokens, [CLS] and [SEP] included; defaults to the model's max_position_embeddings."
        },
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "Fraction of the tokens the generator fills in."})


def main(args=None):
    model_args, electra_args, data_args, training_args = parse_arguments(
        (ModelArguments, ElectraArguments, DataTrainingArguments, TrainingArguments), args
    )
    setup_logging(training_args)
    set_seed(training_args.seed)

    tokenizer = load_pretraining_tokenizer(model_args)
    electra_options = {
        "generator_size_ratio": electra_args.generator_size_ratio,
        "discriminator_loss_weight": electra_args.discriminator_loss_weight,
    }
    model = pretraining_model(
        ElectraPretrainingModel, model_args, tokenizer, new_config_fields={"is_decoder": False}, **electra_options
    )

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
        tokenizer, mlm_probability=data_args.mlm_probability, pad_to_multiple_of=2 * model.config.bucket_size
    )
    trainer = PretrainingTrainer(
        model=model,
        args=distributed_defaults(training_args, model.config),
        train_dataset=blocks.get("train") if training_args.do_train else None,
        eval_dataset=blocks.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=BatchSeededCollator(collator, seed=training_args.seed),
        task=ELECTRA,
        training_data=describe_data(data_args, documents, blocks, max_seq_length),
    )
    train_and_evaluate(trainer)


if __name__ == "__main__":
    main()
