"""Training with the Hugging Face Trainer: what every training command (pretraining and KorQuAD) shares.

- `arguments`: the argument dataclasses and their parsing;
- `models`: the tokenizer and the model to start from, checked to belong together;
- `data`: pretraining documents, sample limits, the batch-seeded masking collator;
- `tasks`, `metrics`: the pretraining tasks and their eval metrics;
- `checkpoints`: complete checkpoints, the output directory's owner, resuming;
- `model_card`: the model card builder;
- `hub`: what `--push_to_hub` uploads from a checkpoint (the model code and ELECTRA's generator too);
- `trainer`: `ReformerKoTrainer` (every command's base) and `PretrainingTrainer`;
- `run`: logging, and the stages from training to the model card (`train_and_evaluate`).
"""

from .arguments import (
    CorpusArguments,
    ModelArguments,
    TrainingArguments,
    check_corpus_arguments,
    parse_arguments,
    parse_config_overrides,
)
from .checkpoints import CheckpointCompletion, check_output_dir, claim_output_dir, is_complete, last_complete_checkpoint
from .data import BatchSeededCollator, TrainingData, describe_data, load_documents, select_samples
from .metrics import argmax_logits, causal_lm_metrics, electra_metrics, masked_lm_metrics, perplexity, predicted_ids
from .model_card import CardContent, build_model_card
from .models import block_length, load_training_tokenizer, new_model_config, training_model
from .run import end_training, setup_logging, train_and_evaluate
from .tasks import CAUSAL_LM, ELECTRA, MASKED_LM, PretrainingTask
from .trainer import NonFiniteLossError, PretrainingTrainer, ReformerKoTrainer, distributed_defaults

__all__ = [
    "CAUSAL_LM",
    "ELECTRA",
    "MASKED_LM",
    "BatchSeededCollator",
    "CardContent",
    "CheckpointCompletion",
    "CorpusArguments",
    "ModelArguments",
    "NonFiniteLossError",
    "PretrainingTask",
    "PretrainingTrainer",
    "ReformerKoTrainer",
    "TrainingArguments",
    "TrainingData",
    "argmax_logits",
    "block_length",
    "build_model_card",
    "causal_lm_metrics",
    "check_corpus_arguments",
    "check_output_dir",
    "claim_output_dir",
    "describe_data",
    "distributed_defaults",
    "electra_metrics",
    "end_training",
    "is_complete",
    "last_complete_checkpoint",
    "load_documents",
    "load_training_tokenizer",
    "masked_lm_metrics",
    "new_model_config",
    "parse_arguments",
    "parse_config_overrides",
    "perplexity",
    "predicted_ids",
    "select_samples",
    "setup_logging",
    "train_and_evaluate",
    "training_model",
]
