"""`reformer-ko pretrain mlm|clm|electra`: pretrain a Korean Reformer on a corpus, like transformers' run_mlm.py.

    reformer-ko pretrain mlm --config_preset mlm-small --tokenizer_name tokenizer/ \
        --train_file corpus/ --do_train --do_eval --output_dir mlm-small

Arguments are transformers' `TrainingArguments` (with `--overwrite_output_dir`) plus the dataclasses below (see
`--help`), or a single JSON file holding them all. The same command runs on several processes under
`accelerate launch` or `torchrun` (`examples/run_mlm.py` etc. call these functions).
- `mlm`: a BERT-style masked language model (no next-sentence prediction);
- `clm`: a left-to-right language model on fixed-length blocks (5,120 tokens for clm-gpt3-small), for
  `generate()` and `pipeline("text-generation")`;
- `electra`: replaced-token detection. A generator (a masked LM a third as wide, by default) fills the masked
  tokens with samples; the discriminator learns which tokens were replaced. The output directory is the
  discriminator, a standalone checkpoint to fine-tune; the generator is saved in its `generator/` folder.
"""

from dataclasses import dataclass, field

from transformers import set_seed

from ..data import causal_lm_collator, mlm_collator, pack_causal_blocks, pack_mlm_blocks
from ..errors import input_errors
from ..electra import DEFAULT_DISCRIMINATOR_LOSS_WEIGHT, DEFAULT_GENERATOR_SIZE_RATIO, ElectraPretrainingModel
from ..modeling_reformer_ko import ReformerKoForCausalLM, ReformerKoForMaskedLM
from ..training import (
    CAUSAL_LM,
    ELECTRA,
    MASKED_LM,
    BatchSeededCollator,
    CorpusArguments,
    ModelArguments,
    PretrainingTrainer,
    TrainingArguments,
    block_length,
    check_corpus_arguments,
    check_output_dir,
    describe_data,
    load_documents,
    load_training_tokenizer,
    parse_arguments,
    select_samples,
    setup_logging,
    train_and_evaluate,
    training_model,
)


@dataclass
class MaskedDataArguments(CorpusArguments):
    """The corpus, and how masked-LM (and ELECTRA) blocks are made and masked."""

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


@dataclass
class CausalDataArguments(CorpusArguments):
    """The corpus, and the length of causal-LM blocks."""

    block_size: int | None = field(
        default=None,
        metadata={
            "help": "Length of the training blocks in tokens; defaults to the model's max_position_embeddings "
            "(5,120 for clm-gpt3-small)."
        },
    )


@dataclass
class ElectraArguments:
    """The ELECTRA generator and the weight of the discriminator's loss."""

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


def _pretrain(command, task, argument_types, argv, log_file, callbacks, build):
    """The frame of the three commands: parse the arguments, set up logging and the seed, check the output directory,
    then `build(model_args, *task_args, data_args, training_args)` -> (model, tokenizer, blocks, collator,
    training_data), whose `ValueError`s are input errors, then train and evaluate."""
    *parsed, training_args = parse_arguments((*argument_types, TrainingArguments), argv, prog=f"reformer-ko {command}")
    check_corpus_arguments(next(p for p in parsed if isinstance(p, CorpusArguments)), training_args)
    setup_logging(training_args, log_file)
    set_seed(training_args.seed)
    resume = check_output_dir(training_args, command) if training_args.do_train else None
    with input_errors():
        model, tokenizer, blocks, collator, training_data = build(*parsed, training_args)
    trainer = PretrainingTrainer(
        model=model,
        args=training_args,
        train_dataset=blocks.get("train") if training_args.do_train else None,
        eval_dataset=blocks.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=collator,
        task=task,
        training_data=training_data,
        callbacks=callbacks,
    )
    return train_and_evaluate(trainer, command=command, resume_from_checkpoint=resume, console=log_file is None)


def _packed_blocks(pack, length, data_args, training_args, model, tokenizer, cache_dir):
    """The corpus's documents, packed by `pack` into blocks of `length`, and their description for the card."""
    documents = load_documents(data_args, seed=training_args.seed, cache_dir=cache_dir)
    with training_args.main_process_first(desc="packing the corpus into blocks"):
        blocks = {
            split: pack(
                split_documents,
                tokenizer,
                length,
                num_proc=data_args.preprocessing_num_workers,
                model_max_length=model.config.max_position_embeddings,
            )
            for split, split_documents in documents.items()
        }
    blocks = select_samples(blocks, data_args)
    return blocks, describe_data(data_args, documents, blocks, length)


def _masked_lm_batches(data_args, training_args, model, tokenizer, cache_dir, whole_word_mask=False):
    """Masked-LM blocks and their batch-seeded masking collator (the masked LM's and ELECTRA's)."""
    length = block_length(data_args.max_seq_length, model.config, tokenizer)
    blocks, training_data = _packed_blocks(pack_mlm_blocks, length, data_args, training_args, model, tokenizer, cache_dir)
    collator = mlm_collator(
        tokenizer,
        mlm_probability=data_args.mlm_probability,
        pad_to_multiple_of=2 * model.config.bucket_size,
        whole_word_mask=whole_word_mask,
    )
    return blocks, BatchSeededCollator(collator, seed=training_args.seed), training_data


def mlm(argv=None, *, log_file=None, callbacks=None) -> dict:
    """Pretrain a masked language model; returns the run's metrics. `log_file`: log there instead of to the
    console; `callbacks`: more `TrainerCallback`s (the demo's progress bars)."""

    def build(model_args, data_args, training_args):
        tokenizer = load_training_tokenizer(model_args)
        model = training_model(ReformerKoForMaskedLM, model_args, tokenizer, new_config_fields={"is_decoder": False})
        blocks, collator, training_data = _masked_lm_batches(
            data_args, training_args, model, tokenizer, model_args.cache_dir, data_args.whole_word_mask
        )
        return model, tokenizer, blocks, collator, training_data

    arguments = (ModelArguments, MaskedDataArguments)
    return _pretrain("pretrain mlm", MASKED_LM, arguments, argv, log_file, callbacks, build)


def clm(argv=None, *, log_file=None, callbacks=None) -> dict:
    """Pretrain a causal language model; returns the run's metrics (options as `mlm`)."""

    def build(model_args, data_args, training_args):
        tokenizer = load_training_tokenizer(model_args)
        # [SEP] ends each document in the packed stream, so it is also where generation stops.
        fields = {"is_decoder": True, "eos_token_id": tokenizer.sep_token_id, "pad_token_id": tokenizer.pad_token_id}
        model = training_model(ReformerKoForCausalLM, model_args, tokenizer, new_config_fields=fields)
        length = block_length(data_args.block_size, model.config, tokenizer)
        blocks, training_data = _packed_blocks(
            pack_causal_blocks, length, data_args, training_args, model, tokenizer, model_args.cache_dir
        )
        collator = causal_lm_collator(tokenizer, pad_to_multiple_of=2 * model.config.bucket_size)
        return model, tokenizer, blocks, collator, training_data

    arguments = (ModelArguments, CausalDataArguments)
    return _pretrain("pretrain clm", CAUSAL_LM, arguments, argv, log_file, callbacks, build)


def electra(argv=None, *, log_file=None, callbacks=None) -> dict:
    """Pretrain an ELECTRA discriminator and its generator; returns the run's metrics (options as `mlm`)."""

    def build(model_args, electra_args, data_args, training_args):
        tokenizer = load_training_tokenizer(model_args)
        model = training_model(
            ElectraPretrainingModel,
            model_args,
            tokenizer,
            new_config_fields={"is_decoder": False},
            generator_size_ratio=electra_args.generator_size_ratio,
            discriminator_loss_weight=electra_args.discriminator_loss_weight,
        )
        blocks, collator, training_data = _masked_lm_batches(
            data_args, training_args, model, tokenizer, model_args.cache_dir, data_args.whole_word_mask
        )
        return model, tokenizer, blocks, collator, training_data

    arguments = (ModelArguments, ElectraArguments, MaskedDataArguments)
    return _pretrain("pretrain electra", ELECTRA, arguments, argv, log_file, callbacks, build)
