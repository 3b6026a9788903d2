"""The official KorQuAD v1.0 metric as a Hugging Face `evaluate` module: exact match and character-level F1, the
numbers `reformer-ko evaluate-korquad` gives (`reformer_ko.korquad.metric`). It takes the inputs and gives the
output keys of the "squad" module, so transformers' `run_qa.py` uses it by changing the line that loads the metric:

    import evaluate
    from reformer_ko.korquad import KORQUAD_METRIC

    metric = evaluate.load(KORQUAD_METRIC)  # this file: loaded from the installed package, no network
    metric.compute(
        predictions=[{"id": "6566495-0-0", "prediction_text": "1989년"}],
        references=[{"id": "6566495-0-0", "answers": {"text": ["1989년 2월 15일"], "answer_start": [0]}}],
    )  # {"exact_match": 0.0, "f1": 66.66...}

`evaluate.load` runs this file as its own module (a copy in its cache), so it imports reformer-ko by name.
"""

import datasets
import evaluate

from reformer_ko.korquad.metric import evaluate_korquad

_DESCRIPTION = """The official KorQuAD v1.0 evaluation (korquad.github.io): exact match after the official
normalisation, and F1 over the characters of the normalised answers (spaces excluded), each the best over a
question's reference answers, averaged over the questions, as percentages."""

_INPUTS = """
Args:
    predictions: a list of {"id": str, "prediction_text": str}, one per question.
    references: a list of {"id": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}}.
Returns:
    {"exact_match": float, "f1": float}, percentages. A question without a prediction scores 0.
"""

_CITATION = """@article{lim2019korquad1,
  title={KorQuAD1.0: Korean QA Dataset for Machine Reading Comprehension},
  author={Lim, Seungyoung and Kim, Myungji and Lee, Jooyoul},
  journal={arXiv preprint arXiv:1909.07005},
  year={2019}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class KorquadMetric(evaluate.Metric):
    """KorQuAD v1.0's exact match and character-level F1 (see the module docstring)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features(
                {
                    "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")},
                    "references": {
                        "id": datasets.Value("string"),
                        "answers": datasets.Sequence(
                            {"text": datasets.Value("string"), "answer_start": datasets.Value("int32")}
                        ),
                    },
                }
            ),
            reference_urls=["https://korquad.github.io/"],
        )

    def _compute(self, predictions, references):
        answers = {prediction["id"]: prediction["prediction_text"] for prediction in predictions}
        # Rows of ids and answers, as `evaluate_korquad` reads a `Dataset`.
        gold = datasets.Dataset.from_dict(
            {"id": [row["id"] for row in references], "answers": [row["answers"] for row in references]}
        )
        return evaluate_korquad(gold, answers)
