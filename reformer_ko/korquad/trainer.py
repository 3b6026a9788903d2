"""The `Trainer` for KorQuAD: evaluation ends in answer texts scored with the official metric, and a model card.

Like transformers' `trainer_qa.QuestionAnsweringTrainer` (examples/pytorch/question-answering), with the
post-processing and the metric built in rather than passed as functions: there is one of each.
"""

import math
import os
import time

import huggingface_hub
import torch
from huggingface_hub import ModelCard, ModelCardData
from transformers import Trainer
from transformers import __version__ as transformers_version
from transformers.modelcard import extract_hyperparameters_from_trainer
from transformers.trainer_utils import PredictionOutput, speed_metrics

from reformer_ko import __version__ as reformer_ko_version
from reformer_ko.korquad.metric import evaluate_korquad
from reformer_ko.korquad.postprocess import postprocess_qa_predictions

# Columns of `prepare_eval_features` that post-processing needs and the model must not see.
POSTPROCESSING_COLUMNS = ("example_id", "offset_mapping")

SPLIT_NAMES = {"eval": "evaluation", "predict": "prediction"}


def check_tokenizer_fits_model(tokenizer, config) -> None:
    """Raise a `ValueError` when the tokenizer has ids the model has no embedding for (`len(tokenizer) > vocab_size`)."""
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's config has vocab_size={config.vocab_size}: "
            f"ids from {config.vocab_size} up have no embedding. Pass the tokenizer the model was pretrained with "
            "(--tokenizer_name, default: the model directory), or a model whose vocab_size covers this tokenizer."
        )


class KorquadTrainer(Trainer):
    """A `Trainer` whose `evaluate` and `predict` turn window logits into answers and score them.

    `eval_dataset` holds features from `prepare_eval_features` (with `example_id` and `offset_mapping`) and
    `eval_examples` the questions they were built from. Evaluation runs the model over the features, picks the
    best span per question (`postprocess_qa_predictions` with `n_best_size` and `max_answer_length`), writes
    `{prefix}_predictions.json` and `{prefix}_nbest_predictions.json` to `output_dir` and adds the official
    KorQuAD v1.0 scores to the metrics: `{prefix}_exact_match`, `{prefix}_f1`.
    """

    def __init__(self, *args, eval_examples=None, n_best_size: int = 20, max_answer_length: int = 30, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_examples = eval_examples
        self.n_best_size = n_best_size
        self.max_answer_length = max_answer_length
        # metric_key_prefix -> the latest metrics of that split, for the model card.
        self.korquad_results = {}

    def evaluate(self, eval_dataset=None, eval_examples=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """Answer and score `eval_examples` (default: the trainer's) from their features; log and return the metrics."""
        features = self.eval_dataset if eval_dataset is None else eval_dataset
        examples = self.eval_examples if eval_examples is None else eval_examples
        dataloader = self.get_eval_dataloader(self._model_inputs(features, examples, "eval_dataset", "eval_examples"))
        metrics, _ = self._answer_and_score(dataloader, features, examples, "Evaluation", ignore_keys, metric_key_prefix)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def predict(self, test_dataset, test_examples, ignore_keys=None, metric_key_prefix: str = "predict"):
        """Answer and score `test_examples`; `predictions` of the output maps question id to answer text."""
        dataloader = self.get_test_dataloader(self._model_inputs(test_dataset, test_examples, "test_dataset", "test_examples"))
        metrics, answers = self._answer_and_score(
            dataloader, test_dataset, test_examples, "Prediction", ignore_keys, metric_key_prefix
        )
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, metrics)
        return PredictionOutput(predictions=answers, label_ids=None, metrics=metrics)

    @staticmethod
    def _model_inputs(features, examples, features_name, examples_name):
        if features is None or examples is None:
            raise ValueError(
                f"KorQuAD evaluation needs both the features ({features_name}, from prepare_eval_features) and the "
                f"examples they were built from ({examples_name})"
            )
        if isinstance(features, dict):
            raise TypeError("KorquadTrainer evaluates one dataset at a time; pass a Dataset, not a dict of them")
        missing = [name for name in POSTPROCESSING_COLUMNS if name not in features.column_names]
        if missing:
            raise ValueError(
                f"The {features_name} lacks the columns {missing}: build it with prepare_eval_features, "
                "not prepare_train_features"
            )
        # Dropped here rather than by remove_unused_columns, which a user may turn off.
        return features.remove_columns(list(POSTPROCESSING_COLUMNS))

    def _answer_and_score(self, dataloader, features, examples, description, ignore_keys, metric_key_prefix):
        start_time = time.time()
        output = self.evaluation_loop(
            dataloader,
            description=description,
            prediction_loss_only=False,
            ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
        )
        answers = postprocess_qa_predictions(
            examples,
            features,
            output.predictions,
            n_best_size=self.n_best_size,
            max_answer_length=self.max_answer_length,
            output_dir=self.args.output_dir if self.args.should_save else None,
            prefix=metric_key_prefix,
        )
        scores = evaluate_korquad(examples, answers)
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in scores.items()}
        metrics[f"{metric_key_prefix}_questions"] = len(examples)
        metrics[f"{metric_key_prefix}_features"] = len(features)
        metrics.update(output.metrics)
        preparation_time = output.metrics.get(f"{metric_key_prefix}_model_preparation_time", 0)
        # Runtime and speeds cover the whole evaluation: the model, post-processing and the metric.
        metrics.update(
            speed_metrics(
                metric_key_prefix,
                start_time + preparation_time,
                num_samples=len(features),
                num_steps=math.ceil(len(features) / (self.args.eval_batch_size * self.args.world_size)),
            )
        )
        runtime = metrics[f"{metric_key_prefix}_runtime"]
        metrics[f"{metric_key_prefix}_questions_per_second"] = round(len(examples) / runtime, 3) if runtime else None
        self.korquad_results[metric_key_prefix] = metrics
        return metrics, answers

    def create_model_card(
        self,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        data_files: dict[str, str] | None = None,
        hyperparameters: dict | None = None,
        language: str = "ko",
        license: str = "apache-2.0",
        tags: list[str] | None = None,
        **kwargs,
    ) -> None:
        """Write `README.md` in `output_dir`: the KorQuAD scores of this run, usage, data and hyperparameters.

        Replaces transformers' generated card (called by `push_to_hub` too), which lists evaluation results only
        when there is an eval loss and links any base model to the Hub. Other keyword arguments are ignored.
        """
        if not self.is_world_process_zero():
            return
        # Where users load it from: the Hub repository when pushing, else the output directory.
        location = getattr(self, "hub_model_id", None) or self.args.hub_model_id or self.args.output_dir
        card = korquad_model_card(
            model_name=model_name or os.path.basename(os.path.normpath(location)),
            location=location,
            base_model=finetuned_from,
            results=self.korquad_results,
            data_files=data_files or {},
            hyperparameters={**_training_hyperparameters(self), **(hyperparameters or {})},
            train_loss=_final_train_loss(self.state.log_history),
            language=language,
            license=license,
            tags=tags,
        )
        os.makedirs(self.args.output_dir, exist_ok=True)
        card.save(os.path.join(self.args.output_dir, "README.md"))


def _training_hyperparameters(trainer: Trainer) -> dict:
    """transformers' list for model cards, with the optimizer named by its value rather than its enum member."""
    hyperparameters = extract_hyperparameters_from_trainer(trainer)
    args = trainer.args
    optimizer = getattr(args.optim, "value", args.optim)
    if "adam" in optimizer:
        optimizer += f" (betas=({args.adam_beta1}, {args.adam_beta2}), epsilon={args.adam_epsilon})"
    hyperparameters["optimizer"] = optimizer
    return hyperparameters


def _final_train_loss(log_history: list[dict]) -> float | None:
    return next((entry["train_loss"] for entry in reversed(log_history) if "train_loss" in entry), None)


def _is_hub_model_id(name: str | None) -> bool:
    if not name or os.path.exists(name):
        return False
    try:
        huggingface_hub.utils.validate_repo_id(name)
    except huggingface_hub.errors.HFValidationError:
        return False
    return True


def korquad_model_card(
    *,
    model_name: str,
    location: str,
    base_model: str | None,
    results: dict[str, dict],
    data_files: dict[str, str],
    hyperparameters: dict,
    train_loss: float | None = None,
    language: str = "ko",
    license: str = "apache-2.0",
    tags: list[str] | None = None,
) -> ModelCard:
    """A model card for a KorQuAD fine-tuned checkpoint loaded from `location`; `results` maps split prefix (`eval`,
    `predict`) to metrics."""
    metadata = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag="question-answering",
        tags=list(dict.fromkeys(["reformer-ko", "korquad", "question-answering", *(tags or [])])),
        base_model=base_model if _is_hub_model_id(base_model) else None,
    )
    # The windows of the fine-tuning run: prepare_eval_features' defaults do not fit every model.
    window_settings = ", ".join(
        f"{name}={hyperparameters.get(name, default)}"
        for name, default in (("max_seq_length", 512), ("doc_stride", 128), ("max_query_length", 64))
    )
    lines = [f"# {model_name}", ""]
    origin = f" from `{base_model}`" if base_model else ""
    lines += [
        (
            f"A reformer-ko model (Korean Reformer) fine-tuned for extractive question answering on KorQuAD v1.0-format "
            f"data{origin}: `ReformerKoForQuestionAnswering`, start and end logits over `[CLS] question [SEP] context "
            "[SEP]` windows."
        ),
        "",
        "## Evaluation",
        "",
    ]
    scored = {prefix: metrics for prefix, metrics in results.items() if f"{prefix}_exact_match" in metrics}
    if scored:
        lines += [
            (
                "The official KorQuAD v1.0 metric (exact match, and F1 over characters after normalisation; the same "
                "numbers as `evaluate-v1.0.py` and `reformer-ko evaluate-korquad`) on these files:"
            ),
            "",
            "| split | file | questions | EM | F1 |",
            "|---|---|---:|---:|---:|",
        ]
        for prefix, metrics in scored.items():
            file_name = os.path.basename(data_files[prefix]) if data_files.get(prefix) else "-"
            lines.append(
                f"| {SPLIT_NAMES.get(prefix, prefix)} | `{file_name}` | {metrics[f'{prefix}_questions']:,} | "
                f"{metrics[f'{prefix}_exact_match']:.2f} | {metrics[f'{prefix}_f1']:.2f} |"
            )
        lines.append("")
    else:
        lines += ["Not evaluated in this run.", ""]
    lines += [
        "## Usage",
        "",
        "```python",
        "import torch",
        "from datasets import Dataset",
        "from transformers import AutoModelForQuestionAnswering, AutoTokenizer",
        "from reformer_ko.korquad import postprocess_qa_predictions, prepare_eval_features",
        "",
        f'model = AutoModelForQuestionAnswering.from_pretrained("{location}").eval()',
        f'tokenizer = AutoTokenizer.from_pretrained("{location}")',
        'questions = Dataset.from_dict({"id": ["q1"], "question": ["..."], "context": ["..."]})',
        f"features = prepare_eval_features(questions[:], tokenizer, {window_settings}, padding=True)",
        "with torch.no_grad():",
        "    outputs = model(**{name: torch.tensor(features[name]) for name in tokenizer.model_input_names})",
        "answers = postprocess_qa_predictions(questions, features, (outputs.start_logits.numpy(), outputs.end_logits.numpy()))",
        "```",
        "",
        (
            "`import reformer_ko` (done by `reformer_ko.korquad`) registers the model with the Auto classes; the model "
            "code is also saved beside the weights, so `trust_remote_code=True` loads the model without reformer-ko."
        ),
        "",
        "## Training",
        "",
    ]
    if data_files.get("train"):
        lines += [f"Fine-tuned on `{os.path.basename(data_files['train'])}`.", ""]
    if train_loss is not None:
        lines += [f"Final training loss: {train_loss:.4f}", ""]
    lines += ["Hyperparameters:", ""]
    lines += [f"- {name}: {value}" for name, value in hyperparameters.items()]
    lines += [
        "",
        "## Framework versions",
        "",
        f"- reformer-ko {reformer_ko_version}",
        f"- Transformers {transformers_version}",
        f"- PyTorch {torch.__version__}",
    ]
    body = "\n".join(lines) + "\n"
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{body}")
