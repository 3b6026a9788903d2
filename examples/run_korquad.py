#!/usr/bin/env python
"""Fine-tune, evaluate and predict with reformer-ko models on KorQuAD v1.0, like transformers' run_qa.py.

    python examples/run_korquad.py \
        --model_name_or_path path/to/reformer-ko-checkpoint \
        --train_file train.json --validation_file dev.json \
        --do_train --do_eval --output_dir outputs/korquad

Any reformer-ko checkpoint loads (masked LM, ELECTRA discriminator or an already fine-tuned QA model): only the
QA head is new. Files are KorQuAD v1.0 JSON (or one example per row). Scores are the official KorQuAD v1.0 metric
(exact match, F1 over characters). The arguments may also come from one JSON file: `run_korquad.py args.json`.
Writes eval_results.json / predict_results.json, {eval,predict}_predictions.json and *_nbest_predictions.json,
and, when training, the model, its tokenizer and a model card (README.md) with the scores.
"""

import logging
from dataclasses import dataclass, field

import datasets
from transformers import AutoConfig, AutoModelForQuestionAnswering, DataCollatorWithPadding, TrainingArguments, set_seed

from reformer_ko import ReformerKoConfig  # importing reformer_ko registers its models with the Auto classes
from reformer_ko.korquad import load_korquad, prepare_eval_features, prepare_train_features
from reformer_ko.korquad.trainer import KorquadTrainer, check_tokenizer_fits_model
from reformer_ko.training import (
    distributed_defaults,
    end_training,
    load_pretraining_tokenizer,
    parse_arguments,
    resume_checkpoint,
    setup_logging,
)

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """Which checkpoint and tokenizer to start from."""

    model_name_or_path: str = field(
        metadata={"help": "A reformer-ko checkpoint: masked LM, ELECTRA discriminator or question answering."}
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer directory or Hub id, if not the one saved with the model."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache models downloaded from the Hub."})
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of a Hub model."})
    token: str | None = field(default=None, metadata={"help": "Hub token, for private models."})


@dataclass
class DataTrainingArguments:
    """Which KorQuAD files to use and how examples become model inputs and answers."""

    train_file: str | None = field(default=None, metadata={"help": "KorQuAD v1.0 JSON to fine-tune on."})
    validation_file: str | None = field(default=None, metadata={"help": "KorQuAD v1.0 JSON to evaluate on."})
    test_file: str | None = field(
        default=None, metadata={"help": "KorQuAD v1.0 JSON to predict (and score: its answers are the gold)."}
    )
    skip_invalid_examples: bool = field(
        default=False,
        metadata={"help": "Leave out (and count) examples whose answer is not at its answer_start, instead of failing."},
    )
    max_seq_length: int = field(
        default=512, metadata={"help": "Tokens per window: [CLS] question [SEP] context [SEP]."}
    )
    doc_stride: int = field(default=128, metadata={"help": "Context tokens shared by consecutive windows."})
    max_query_length: int = field(default=64, metadata={"help": "Questions are cut after this many tokens."})
    n_best_size: int = field(default=20, metadata={"help": "Spans kept per question in nbest_predictions.json."})
    max_answer_length: int = field(default=30, metadata={"help": "Longest answer, in tokens."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training questions."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation questions."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only the first N test questions."})
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for turning examples into features."}
    )

    def __post_init__(self):
        for name in ("train_file", "validation_file", "test_file"):
            path = getattr(self, name)
            if path is not None and not path.endswith((".json", ".jsonl")):
                raise ValueError(f"--{name} must be a KorQuAD .json (or .jsonl) file, got {path}")


def check_requested_files(data_args: DataTrainingArguments, training_args: TrainingArguments) -> None:
    """Fail before loading anything when a requested stage has no data file."""
    stages = (("do_train", "train_file"), ("do_eval", "validation_file"), ("do_predict", "test_file"))
    if not any(getattr(training_args, stage) for stage, _ in stages):
        raise ValueError("Nothing to do: pass --do_train, --do_eval and/or --do_predict")
    for stage, file_argument in stages:
        if getattr(training_args, stage) and getattr(data_args, file_argument) is None:
            raise ValueError(f"--{stage} needs --{file_argument}")


def load_examples(path: str, max_samples: int | None, skip_invalid: bool) -> datasets.Dataset:
    """The validated questions of a KorQuAD file, the first `max_samples` of them if given."""
    examples = load_korquad(path, skip_invalid=skip_invalid)
    if max_samples is not None:
        examples = examples.select(range(min(max_samples, len(examples))))
    return examples


def load_model_tokenizer(model_args: ModelArguments):
    """The question-answering model and its tokenizer, checked to belong together."""
    tokenizer = load_pretraining_tokenizer(model_args)
    hub_options = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token}
    config = AutoConfig.from_pretrained(model_args.model_name_or_path, **hub_options)
    if config.model_type != ReformerKoConfig.model_type:
        raise ValueError(
            f"{model_args.model_name_or_path} is a {config.model_type!r} checkpoint; this script fine-tunes reformer-ko "
            "models (pretrained with examples/run_mlm.py or run_electra.py)"
        )
    check_tokenizer_fits_model(tokenizer, config)
    model = AutoModelForQuestionAnswering.from_pretrained(model_args.model_name_or_path, config=config, **hub_options)
    # Saved with the model so that pipelines and users truncate to what the model accepts.
    tokenizer.model_max_length = min(tokenizer.model_max_length, config.max_position_embeddings)
    return model, tokenizer


def main(argv=None) -> dict:
    """Run the requested stages (arguments: `argv`, default the command line); returns every metric computed."""
    model_args, data_args, training_args = parse_arguments((ModelArguments, DataTrainingArguments, TrainingArguments), argv)
    setup_logging(training_args)
    logger.setLevel(training_args.get_process_log_level())
    logger.info("Training/evaluation parameters %s", training_args)
    check_requested_files(data_args, training_args)
    set_seed(training_args.seed)

    stages = {
        "train": (training_args.do_train, data_args.train_file, data_args.max_train_samples),
        "eval": (training_args.do_eval, data_args.validation_file, data_args.max_eval_samples),
        "predict": (training_args.do_predict, data_args.test_file, data_args.max_predict_samples),
    }
    examples = {
        split: load_examples(path, max_samples, data_args.skip_invalid_examples)
        for split, (requested, path, max_samples) in stages.items()
        if requested
    }

    model, tokenizer = load_model_tokenizer(model_args)
    distributed_defaults(training_args, model.config)
    max_seq_length = min(data_args.max_seq_length, tokenizer.model_max_length)
    if max_seq_length < data_args.max_seq_length:
        logger.warning(
            "--max_seq_length %d is longer than the model and its tokenizer accept: using %d",
            data_args.max_seq_length, max_seq_length,
        )
    feature_lengths = {
        "max_seq_length": max_seq_length,
        "doc_stride": data_args.doc_stride,
        "max_query_length": data_args.max_query_length,
    }

    features = {}
    for split, split_examples in examples.items():
        prepare = prepare_train_features if split == "train" else prepare_eval_features
        with training_args.main_process_first(desc=f"{split} features"):
            features[split] = split_examples.map(
                prepare,
                batched=True,
                remove_columns=split_examples.column_names,
                fn_kwargs={"tokenizer": tokenizer, **feature_lengths},
                num_proc=data_args.preprocessing_num_workers,
                desc=f"Windows of the {split} questions",
            )

    # The model needs lengths that are multiples of 2 * bucket_size; padding here spares it padding every batch.
    pad_to_multiple_of = 2 * model.config.bucket_size
    trainer = KorquadTrainer(
        model=model,
        args=training_args,
        train_dataset=features.get("train"),
        eval_dataset=features.get("eval"),
        eval_examples=examples.get("eval"),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of),
        n_best_size=data_args.n_best_size,
        max_answer_length=data_args.max_answer_length,
    )

    all_metrics = {}
    try:
        if training_args.do_train:
            train_result = trainer.train(resume_from_checkpoint=resume_checkpoint(training_args))
            trainer.save_model()
            metrics = {
                **train_result.metrics,
                "train_questions": len(examples["train"]),
                "train_features": len(features["train"]),
            }
            trainer.log_metrics("train", metrics)
            trainer.save_metrics("train", metrics)
            trainer.save_state()
            all_metrics.update(metrics)

        if training_args.do_eval:
            logger.info("*** Evaluate ***")
            metrics = trainer.evaluate()
            trainer.log_metrics("eval", metrics)
            trainer.save_metrics("eval", metrics)
            all_metrics.update(metrics)

        if training_args.do_predict:
            logger.info("*** Predict ***")
            metrics = trainer.predict(features["predict"], examples["predict"]).metrics
            trainer.log_metrics("predict", metrics)
            trainer.save_metrics("predict", metrics)
            all_metrics.update(metrics)

        card = {
            "finetuned_from": model_args.model_name_or_path,
            "data_files": {"train": data_args.train_file, "eval": data_args.validation_file, "predict": data_args.test_file},
            "hyperparameters": {
                **feature_lengths, "n_best_size": data_args.n_best_size, "max_answer_length": data_args.max_answer_length
            },
        }
        if training_args.push_to_hub:
            trainer.push_to_hub(**card)
        elif training_args.do_train:
            trainer.create_model_card(**card)
    finally:
        end_training(trainer)
    return all_metrics


if __name__ == "__main__":
    main()
