#!/usr/bin/env python
"""Pretrain a Korean Reformer causal (left-to-right) language model on a corpus, by default on 5,120-token blocks.

    python examples/run_clm.py --config_preset clm-gpt3-small --tokenizer_name tokenizer/ \
        --train_file corpus/ --do_train --do_eval --output_dir clm-gpt3-small

Arguments are transformers' `TrainingArguments` plus the two dataclasses below (see `--help`), or a single JSON
file holding them all. The same command runs on several processes under `accelerate launch` or `torchrun`. The
result works with `model.generate()` and `pipeline("text-generation")`.
"""

from dataclasses import dataclass, field

from transformers import TrainingArguments, set_seed

from reformer_ko import ReformerKoForCausalLM
from reformer_ko.data import causal_lm_collator, pack_causal_blocks
from reformer_ko.training import (
    CAUSAL_LM,
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
    block_size: int | None = field(
        default=None,
        metadata={
            "help": "Length of the training blocks in tokens; defaults to the model's max_position_embeddings (5,120 for clm-gpt3-small)."
        },
    )


def main(args=None):
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataTrainingArguments, TrainingArguments), args
    )
    setup_logging(training_args)
    set_seed(training_args.seed)

    tokenizer = load_pretraining_tokenizer(model_args)
    # [SEP] ends each document in the packed stream, so it is also where generation stops.
    new_config_fields = {"is_decoder": True, "eos_token_id": tokenizer.sep_token_id, "pad_token_id": tokenizer.pad_token_id}
    model = pretraining_model(ReformerKoForCausalLM, model_args, tokenizer, new_config_fields=new_config_fields)

    documents = load_documents(data_args, seed=training_args.seed, cache_dir=model_args.cache_dir)
    block_size = block_length(data_args.block_size, model.config, tokenizer)
    with training_args.main_process_first(desc="packing the corpus into blocks"):
        blocks = {
            split: pack_causal_blocks(
                split_documents,
                tokenizer,
                block_size,
                num_proc=data_args.preprocessing_num_workers,
                model_max_length=model.config.max_position_embeddings,
            )
            for split, split_documents in documents.items()
        }
    blocks = select_samples(blocks, data_args)

    trainer = PretrainingTrainer(
        model=model,
        args=distributed_defaults(training_args, model.config),
        train_dataset=blocks.get("train") if training_args.do_train else None,
        eval_dataset=blocks.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=causal_lm_collator(tokenizer, pad_to_multiple_of=2 * model.config.bucket_size),
        task=CAUSAL_LM,
        training_data=describe_data(data_args, documents, blocks, block_size),
    )
    train_and_evaluate(trainer)


if __name__ == "__main__":
    main()
