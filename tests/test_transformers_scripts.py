"""A reformer-ko checkpoint fine-tuned the way transformers' example scripts do it (run_glue.py for sentence-pair
classification, run_ner.py for token classification), in a process without reformer-ko (`--trust_remote_code`),
then reloaded through the Auto classes and `pipeline(...)` (docs/transformers-scripts.md)."""

import json
import subprocess
import sys

import pytest
from pretraining_fixtures import CORPUS, script_environment
from tiny_models import tiny_config

from reformer_ko import ReformerKoForMaskedLM
from reformer_ko.tokenization import train_tokenizer

POSITIONS = 128

# The steps of run_glue.py / run_ner.py (transformers 5) with their defaults, on a few Korean sentences.
FINE_TUNE = """
import json, sys
sys.modules["reformer_ko"] = None  # reformer-ko is not installed here: its code comes with the checkpoint
import numpy as np
import torch
from datasets import Dataset
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification,
                          AutoTokenizer, DataCollatorForTokenClassification, Trainer, TrainingArguments,
                          default_data_collator, pipeline)

task, model_dir, output_dir = sys.argv[1:4]
sentences = [line.strip() for line in open(sys.argv[4], encoding="utf-8") if line.strip()][:24]
tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
max_seq_length = min(128, tokenizer.model_max_length)  # run_glue.py's --max_seq_length default is 128
labels = ["entailment", "neutral", "contradiction"] if task == "glue" else ["O", "B-LOC"]
config = AutoConfig.from_pretrained(
    model_dir, num_labels=len(labels), finetuning_task=task, trust_remote_code=True,
    id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
)
if task == "glue":
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, config=config, trust_remote_code=True)
    raw = Dataset.from_dict({
        "sentence1": sentences, "sentence2": sentences[1:] + sentences[:1], "label": [i % 3 for i in range(24)],
    })

    def preprocess(examples):  # run_glue.py: pad to max_seq_length, truncate
        result = tokenizer(examples["sentence1"], examples["sentence2"], padding="max_length",
                           max_length=max_seq_length, truncation=True)
        result["label"] = examples["label"]
        return result

    collator = default_data_collator
else:
    model = AutoModelForTokenClassification.from_pretrained(model_dir, config=config, trust_remote_code=True)
    words = [sentence.split() for sentence in sentences]
    raw = Dataset.from_dict({
        "tokens": words, "ner_tags": [[int(word.startswith(("한국", "서울"))) for word in row] for row in words],
    })

    def preprocess(examples):  # run_ner.py: words to tokens, a label on each word's first token, -100 elsewhere
        tokenized = tokenizer(examples["tokens"], padding=False, truncation=True, max_length=max_seq_length,
                              is_split_into_words=True)
        all_labels = []
        for i, tags in enumerate(examples["ner_tags"]):
            previous, row = None, []
            for word in tokenized.word_ids(batch_index=i):
                row.append(-100 if word is None or word == previous else tags[word])
                previous = word
            all_labels.append(row)
        tokenized["labels"] = all_labels
        return tokenized

    collator = DataCollatorForTokenClassification(tokenizer)

dataset = raw.map(preprocess, batched=True, remove_columns=raw.column_names)
args = TrainingArguments(output_dir, per_device_train_batch_size=8, max_steps=4, learning_rate=1e-3,
                         report_to=[], use_cpu=True, disable_tqdm=True, save_strategy="no")


def compute_metrics(prediction):  # accuracy over the labelled positions
    predicted, gold = np.argmax(prediction.predictions, axis=-1), prediction.label_ids
    return {"accuracy": float((predicted[gold != -100] == gold[gold != -100]).mean())}


trainer = Trainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset, processing_class=tokenizer,
                  data_collator=collator, compute_metrics=compute_metrics)
train_result = trainer.train()
trainer.save_model()
metrics = trainer.evaluate()

auto_class = AutoModelForSequenceClassification if task == "glue" else AutoModelForTokenClassification
reloaded = auto_class.from_pretrained(output_dir, trust_remote_code=True).eval()
batch = collator([dataset[0], dataset[1]])
with torch.no_grad():
    same = torch.equal(model.eval()(**batch).logits, reloaded(**batch).logits)
pipe = pipeline("text-classification" if task == "glue" else "token-classification", model=output_dir,
                trust_remote_code=True)
if task == "glue":
    answer = pipe({"text": sentences[0], "text_pair": sentences[1]})
else:
    answer = pipe(sentences[0], ignore_labels=[])  # every token, "O" included
print(json.dumps({"train_loss": train_result.training_loss, "eval": metrics, "same_logits": same,
                  "model_class": type(reloaded).__name__, "module": type(reloaded).__module__,
                  "answer": answer}, ensure_ascii=False, default=str))
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A reformer-ko masked-LM checkpoint with its tokenizer (128 positions), as reformer-ko saves it."""
    directory = tmp_path_factory.mktemp("checkpoint")
    tokenizer = train_tokenizer(CORPUS, directory, vocab_size=800, limit_alphabet=300, model_max_length=POSITIONS)
    ReformerKoForMaskedLM(tiny_config(vocab_size=len(tokenizer), max_position_embeddings=POSITIONS)).save_pretrained(
        directory
    )
    return directory


@pytest.mark.parametrize("task", ["glue", "ner"], ids=["run_glue-sentence-pairs", "run_ner-tokens"])
def test_a_fine_tune_as_transformers_scripts_run_it_saves_a_model_that_reloads_and_answers(task, checkpoint, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", FINE_TUNE, task, checkpoint, tmp_path / "output", CORPUS],
        capture_output=True, text=True, env=script_environment(tmp_path), stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads(result.stdout.strip().splitlines()[-1])
    assert run["train_loss"] > 0 and 0 <= run["eval"]["eval_accuracy"] <= 1
    expected_class = "ReformerKoForSequenceClassification" if task == "glue" else "ReformerKoForTokenClassification"
    assert run["model_class"] == expected_class and run["module"].startswith("transformers_modules")
    assert run["same_logits"]
    if task == "glue":
        assert run["answer"]["label"] in {"entailment", "neutral", "contradiction"}
    else:
        assert run["answer"] and all(entity["entity"] in {"O", "B-LOC"} for entity in run["answer"])
