"""The Trainer for KorQuAD: evaluation ends in answer texts scored with the official metric.

Like transformers' `trainer_qa.QuestionAnsweringTrainer` (examples/pytorch/question-answering), with the
post-processing and the metric built in rather than passed as functions: there is one of each. Checkpoints, the
non-finite-loss stop and the model card come from `reformer_ko.training.ReformerKoTrainer`.
"""

import math
import os
import time

from transformers.trainer_utils import PredictionOutput, speed_metrics

from ..training import CardContent, ReformerKoTrainer
from ..training.model_card import model_rows
from .metric import evaluate_korquad
from .postprocess import postprocess_qa_predictions

# Columns of `prepare_eval_features` that post-processing needs and the model must not see.
POSTPROCESSING_COLUMNS = ("example_id", "offset_mapping")

SPLIT_NAMES = {"eval": "evaluation", "predict": "prediction"}
# The windows of the fine-tuning run, with prepare_eval_features' defaults: they do not fit every model.
WINDOW_SETTINGS = (("max_seq_length", 512), ("doc_stride", 128), ("max_query_length", 64))


class KorquadTrainer(ReformerKoTrainer):
    """A `ReformerKoTrainer` whose `evaluate` and `predict` turn window logits into answers and score them.

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

    def card_content(
        self, location, finetuned_from: str | None = None, data_files: dict | None = None, hyperparameters=None, **kwargs
    ) -> CardContent:
        """The KorQuAD scores of this run per split and file, usage through `prepare_eval_features`, the files."""
        data_files = data_files or {}
        hyperparameters = hyperparameters or {}
        model = self.accelerator.unwrap_model(self.model)
        origin = f" from `{finetuned_from}`" if finetuned_from else ""
        windows = ", ".join(f"{name}={hyperparameters.get(name, default)}" for name, default in WINDOW_SETTINGS)
        usage = "\n".join(
            [
                "import torch",
                "from datasets import Dataset",
                "from transformers import AutoModelForQuestionAnswering, AutoTokenizer",
                "from reformer_ko.korquad import postprocess_qa_predictions, prepare_eval_features",
                "",
                f'model = AutoModelForQuestionAnswering.from_pretrained("{location}").eval()',
                f'tokenizer = AutoTokenizer.from_pretrained("{location}")',
                'questions = Dataset.from_dict({"id": ["q1"], "question": ["..."], "context": ["..."]})',
                f"features = prepare_eval_features(questions[:], tokenizer, {windows}, padding=True)",
                "with torch.no_grad():",
                "    outputs = model(**{name: torch.tensor(features[name]) for name in tokenizer.model_input_names})",
                "answers = postprocess_qa_predictions(questions, features, (outputs.start_logits.numpy(), "
                "outputs.end_logits.numpy()))",
            ]
        )
        data_lines = [f"Fine-tuned on `{os.path.basename(data_files['train'])}`."] if data_files.get("train") else []
        return CardContent(
            summary=(
                "A reformer-ko model (Korean Reformer) fine-tuned for extractive question answering on KorQuAD "
                f"v1.0-format data{origin}: `ReformerKoForQuestionAnswering`, start and end logits over `[CLS] question "
                "[SEP] context [SEP]` windows. `import reformer_ko` registers the model with the Auto classes; the "
                "model code is also saved beside the weights, so `trust_remote_code=True` loads it without reformer-ko."
            ),
            usage=usage,
            pipeline_tag="question-answering",
            tags=["korquad", "question-answering"],
            base_model=finetuned_from,
            data_lines=data_lines,
            results_lines=self._score_lines(data_files),
            model_rows=model_rows(model, model.config),
            hyperparameters=hyperparameters,
        )

    def _score_lines(self, data_files: dict) -> list[str]:
        scored = {prefix: metrics for prefix, metrics in self.korquad_results.items() if f"{prefix}_exact_match" in metrics}
        if not scored:
            return []
        lines = [
            "The official KorQuAD v1.0 metric (exact match, and F1 over characters after normalisation; the same "
            "numbers as `evaluate-v1.0.py` and `reformer-ko evaluate-korquad`) on these files:",
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
        return lines
