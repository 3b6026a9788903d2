"""`reformer-ko korquad`: fine-tune, evaluate and predict on KorQuAD v1.0, like transformers' run_qa.py.

    reformer-ko korquad --model_name_or_path path/to/reformer-ko-checkpoint \
        --train_file train.json --validation_file dev.json \
        --do_train --do_eval --output_dir outputs/korquad

Any reformer-ko checkpoint loads (masked LM, ELECTRA discriminator or an already fine-tuned QA model): only the
QA head is new; or start a new model with `--config_preset` / `--config_name` and `--tokenizer_name`. Files are
KorQuAD v1.0 JSON (or one example per row). Scores are the official KorQuAD v1.0 metric (exact match, F1 over
characters). The arguments may also come from one JSON file. Writes eval_results.json / predict_results.json,
{eval,predict}_predictions.json and *_nbest_predictions.json, and, when training, the model, its tokenizer and a
model card (README.md) with the scores.
"""

import logging
from dataclasses import dataclass, field

import datasets
from transformers import DataCollatorWithPadding, set_seed

from ..errors import UserInputError, input_errors
from ..korquad import load_korquad, prepare_eval_features, prepare_train_features
from ..korquad.trainer import KorquadTrainer
from ..modeling_reformer_ko import ReformerKoForQuestionAnswering
from ..training import (
    ModelArguments,
    TrainingArguments,
    check_output_dir,
    load_training_tokenizer,
    parse_arguments,
    setup_logging,
    train_and_evaluate,
    training_model,
)

logger = logging.getLogger(__name__)

COMMAND = "korquad"


@dataclass
class KorquadDataArguments:
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


def check_requested_files(data_args: KorquadDataArguments, training_args) -> None:
    """Fail before loading anything when a requested stage has no data file."""
    stages = (("do_train", "train_file"), ("do_eval", "validation_file"), ("do_predict", "test_file"))
    if not any(getattr(training_args, stage) for stage, _ in stages):
        raise UserInputError("Nothing to do: pass --do_train, --do_eval and/or --do_predict.")
    for stage, file_argument in stages:
        if getattr(training_args, stage) and getattr(data_args, file_argument) is None:
            raise UserInputError(f"--{stage} needs --{file_argument}.")


def load_examples(path: str, max_samples: int | None, skip_invalid: bool) -> datasets.Dataset:
    """The validated questions of a KorQuAD file, the first `max_samples` of them if given."""
    examples = load_korquad(path, skip_invalid=skip_invalid)
    if max_samples is not None:
        examples = examples.select(range(min(max_samples, len(examples))))
    return examples


def window_features(examples: dict, tokenizer, feature_lengths: dict, training_args, num_proc) -> dict:
    """split -> the model's windows of that split's questions (training features for "train")."""
    features = {}
    for split, split_examples in examples.items():
        prepare = prepare_train_features if split == "train" else prepare_eval_features
        with training_args.main_process_first(desc=f"{split} features"):
            features[split] = split_examples.map(
                prepare,
                batched=True,
                remove_columns=split_examples.column_names,
                fn_kwargs={"tokenizer": tokenizer, **feature_lengths},
                num_proc=num_proc,
                desc=f"Windows of the {split} questions",
            )
    return features


def main(argv=None, *, log_file=None, callbacks=None) -> dict:
    """Run the requested stages (arguments: `argv`, default the command line); returns every metric computed.
    `log_file`: log there instead of to the console; `callbacks`: more `TrainerCallback`s."""
    arguments = (ModelArguments, KorquadDataArguments, TrainingArguments)
    model_args, data_args, training_args = parse_arguments(arguments, argv, prog=f"reformer-ko {COMMAND}")
    setup_logging(training_args, log_file)
    check_requested_files(data_args, training_args)
    set_seed(training_args.seed)
    resume = check_output_dir(training_args, COMMAND) if training_args.do_train else None

    stages = {
        "train": (training_args.do_train, data_args.train_file, data_args.max_train_samples),
        "eval": (training_args.do_eval, data_args.validation_file, data_args.max_eval_samples),
        "predict": (training_args.do_predict, data_args.test_file, data_args.max_predict_samples),
    }
    with input_errors():
        examples = {
            split: load_examples(path, max_samples, data_args.skip_invalid_examples)
            for split, (requested, path, max_samples) in stages.items()
            if requested
        }
        tokenizer = load_training_tokenizer(model_args)
        model = training_model(
            ReformerKoForQuestionAnswering, model_args, tokenizer, new_config_fields={"is_decoder": False}
        )
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
        features = window_features(examples, tokenizer, feature_lengths, training_args, data_args.preprocessing_num_workers)

    # The model needs lengths that are multiples of 2 * bucket_size; padding here spares it padding every batch.
    trainer = KorquadTrainer(
        model=model,
        args=training_args,
        train_dataset=features.get("train"),
        eval_dataset=features.get("eval"),
        eval_examples=examples.get("eval"),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=2 * model.config.bucket_size),
        n_best_size=data_args.n_best_size,
        max_answer_length=data_args.max_answer_length,
        callbacks=callbacks,
    )
    train_metrics = None
    if training_args.do_train:
        train_metrics = {"train_questions": len(examples["train"]), "train_features": len(features["train"])}
    card = {
        "finetuned_from": model_args.model_name_or_path,
        "data_files": {"train": data_args.train_file, "eval": data_args.validation_file, "predict": data_args.test_file},
        "hyperparameters": {
            **feature_lengths, "n_best_size": data_args.n_best_size, "max_answer_length": data_args.max_answer_length
        },
    }
    return train_and_evaluate(
        trainer,
        command=COMMAND,
        resume_from_checkpoint=resume,
        train_metrics=train_metrics,
        predict=lambda: trainer.predict(features["predict"], examples["predict"]).metrics,
        card=card,
        console=log_file is None,
    )
