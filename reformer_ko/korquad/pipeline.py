"""`pipeline("question-answering")` for extractive QA models, with the KorQuAD windows and post-processing.

transformers 5.3 removed its question-answering pipeline (pointing to chat models instead). Importing
reformer_ko puts this one under that name when transformers no longer has it, so a fine-tuned checkpoint answers
questions the way transformers users know. It builds windows with `prepare_eval_features` and picks answers with
`nbest_answers`, exactly as `reformer-ko korquad` evaluates.
"""

import transformers.pipelines
from transformers import AutoModelForQuestionAnswering, Pipeline

from reformer_ko.korquad.features import prepare_eval_features
from reformer_ko.korquad.postprocess import nbest_answers

TASK = "question-answering"


class QuestionAnsweringPipeline(Pipeline):
    """Answer `question` from `context`: `{"answer", "score", "start", "end"}` (character offsets into the
    context), or a list of the `top_k` best when `top_k > 1`. The model reads the text in NFC; the answer is
    `context[start:end]`, in the caller's own characters (decomposed Hangul stays decomposed).

    Options: `max_seq_length` (384, capped at the model's `max_position_embeddings`), `doc_stride` (128),
    `max_query_length` (64), `max_answer_length` (30 tokens), `top_k` (1).
    """

    def __call__(self, inputs=None, *, question=None, context=None, **kwargs):
        if inputs is None:
            if question is None or context is None:
                raise ValueError("Give question= and context= (or a dict with 'question' and 'context').")
            inputs = {"question": question, "context": context}
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self, max_seq_length=None, doc_stride=None, max_query_length=None, max_answer_length=None, top_k=None
    ):
        preprocess = {
            name: value
            for name, value in (
                ("max_seq_length", max_seq_length),
                ("doc_stride", doc_stride),
                ("max_query_length", max_query_length),
            )
            if value is not None
        }
        postprocess = {
            name: value for name, value in (("max_answer_length", max_answer_length), ("top_k", top_k)) if value is not None
        }
        return preprocess, {}, postprocess

    def preprocess(self, inputs, max_seq_length=384, doc_stride=128, max_query_length=64):
        if not isinstance(inputs, dict) or not {"question", "context"} <= inputs.keys():
            raise ValueError(f"Each input is a dict with 'question' and 'context', got {inputs!r}.")
        example = {"id": ["0"], "question": [inputs["question"]], "context": [inputs["context"]]}
        max_seq_length = min(max_seq_length, self.model.config.max_position_embeddings)
        features = prepare_eval_features(
            example, self.tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride, max_query_length=max_query_length
        )
        model_inputs = self.tokenizer.pad(
            {name: features[name] for name in ("input_ids", "token_type_ids", "attention_mask")}, return_tensors="pt"
        )
        return {"model_inputs": model_inputs, "features": features, "example": example}

    def _forward(self, inputs):
        outputs = self.model(**inputs["model_inputs"])
        return {
            "start_logits": outputs.start_logits,
            "end_logits": outputs.end_logits,
            "features": inputs["features"],
            "example": inputs["example"],
        }

    def postprocess(self, outputs, max_answer_length=30, top_k=1):
        logits = (outputs["start_logits"].float().numpy(), outputs["end_logits"].float().numpy())
        nbest = nbest_answers(
            outputs["example"], outputs["features"], logits, n_best_size=max(top_k, 20), max_answer_length=max_answer_length
        )["0"]
        answers = [
            {
                "answer": span["text"],
                "score": span["probability"],
                "start": span["answer_start"],
                "end": span["answer_start"] + len(span["text"]),
            }
            for span in nbest[:top_k]
        ] or [{"answer": "", "score": 0.0, "start": 0, "end": 0}]
        return answers[0] if top_k == 1 else answers


def register_question_answering_pipeline():
    """Make `pipeline("question-answering")` available again where transformers has removed the task."""
    if TASK in transformers.pipelines.PIPELINE_REGISTRY.get_supported_tasks():
        return
    # Some releases keep removed tasks in a table that makes `pipeline()` refuse them by name.
    getattr(transformers.pipelines, "REMOVED_TASKS", {}).pop(TASK, None)
    transformers.pipelines.PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=QuestionAnsweringPipeline, pt_model=AutoModelForQuestionAnswering, type="text"
    )
