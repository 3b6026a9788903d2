"""The pretraining data of a run: documents with a validation split, sample limits, a batch-seeded masking
collator, and the description of the data that goes into the model card."""

import hashlib
import math
from dataclasses import dataclass, field

import datasets
import numpy as np
import torch
from transformers import TrainerCallback

from ..data import load_corpus
from ..errors import UserInputError
from .arguments import CorpusArguments


def is_validation_document(index, percentage):
    """Whether the `index`-th document is held out: `percentage` % of the documents, evenly spaced."""
    return math.floor((index + 1) * percentage / 100) > math.floor(index * percentage / 100)


def load_documents(corpus_args: CorpusArguments, *, seed, cache_dir=None) -> dict:
    """The `train` and `validation` documents (datasets of `{"sentences": [...]}`): the validation files, or the
    evenly spaced `validation_split_percentage` % of the training documents. Streamed training documents are
    shuffled through a buffer, reshuffled each epoch."""
    options = {
        "streaming": corpus_args.streaming,
        "num_proc": corpus_args.preprocessing_num_workers,
        "cache_dir": cache_dir,
        "encoding_errors": corpus_args.encoding_errors,
    }
    documents = {}
    if corpus_args.train_file:
        documents["train"] = load_corpus(corpus_args.train_file, **options)
    if corpus_args.validation_file:
        documents["validation"] = load_corpus(corpus_args.validation_file, **options)
    elif corpus_args.validation_split_percentage > 0:
        percentage = corpus_args.validation_split_percentage
        corpus = documents["train"]
        documents["validation"] = corpus.filter(lambda _, i: is_validation_document(i, percentage), with_indices=True)
        documents["train"] = corpus.filter(lambda _, i: not is_validation_document(i, percentage), with_indices=True)
        if not corpus_args.streaming and len(documents["validation"]) == 0:
            raise UserInputError(
                f"{percentage}% of {len(corpus)} documents is no document: raise --validation_split_percentage or "
                "give --validation_file."
            )
    if corpus_args.streaming and "train" in documents:
        documents["train"] = documents["train"].shuffle(seed=seed, buffer_size=10_000)
    return documents


def select_samples(blocks: dict, corpus_args: CorpusArguments) -> dict:
    """Keep the first `max_train_samples` / `max_eval_samples` blocks; a split left without blocks is an error."""
    limits = {"train": corpus_args.max_train_samples, "validation": corpus_args.max_eval_samples}
    selected = {}
    for split, dataset in blocks.items():
        limit = limits.get(split)
        if limit is None:
            selected[split] = dataset
        elif isinstance(dataset, datasets.IterableDataset):
            selected[split] = dataset.take(limit)
        else:
            selected[split] = dataset.select(range(min(limit, len(dataset))))
        if not isinstance(dataset, datasets.IterableDataset) and len(selected[split]) == 0:
            raise UserInputError(
                f"The {split} data gives no block: give more text, or shorter blocks (--block_size / --max_seq_length)."
            )
    return selected


class BatchSeededCollator:
    """Run a masking collator (one drawing from torch's global CPU generator, e.g. `mlm_collator(..., seed=None)`)
    with that generator seeded from `seed`, the training epoch and the batch's token ids, and restored afterwards.

    A batch is then masked the same way whatever ran before it: in a run resumed from a checkpoint (the Trainer's
    data loader collates one batch ahead, so the checkpointed random state cannot replay it), in a DataLoader
    worker, and in every evaluation; and differently in every epoch, so that even a batch of one block gets new
    masks each time it comes round (dynamic masking). `epoch` is set by `MaskingEpoch` at each epoch's start and is
    None in evaluation, whose masks stay the same all run. Training and LSH rotations keep drawing from the global
    generator, which the Trainer checkpoints.
    """

    def __init__(self, collator, seed):
        self.collator = collator
        self.seed = seed
        self.epoch = None

    def batch_seed(self, examples):
        key = str(self.seed) if self.epoch is None else f"{self.seed}/{self.epoch}"
        digest = hashlib.blake2b(key.encode(), digest_size=8)
        for example in examples:
            digest.update(np.asarray(example["input_ids"], dtype=np.int64).tobytes())
        return int.from_bytes(digest.digest(), "little") >> 1

    def __call__(self, examples):
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.batch_seed(examples))
            return self.collator(examples)


class MaskingEpoch(TrainerCallback):
    """Tell a `BatchSeededCollator` the epoch that starts (the Trainer's state holds it, a resumed run included):
    the data loader's iterator, and its workers' copies of the collator, are made after `on_epoch_begin`."""

    def __init__(self, collator: BatchSeededCollator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = math.floor((state.epoch or 0) + 1e-6)

    def on_train_end(self, args, state, control, **kwargs):
        self.collator.epoch = None


@dataclass
class TrainingData:
    """What a model was trained on, for its model card."""

    train_files: list[str]
    validation: str
    block_length: int
    documents: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)


def describe_data(corpus_args: CorpusArguments, documents: dict, blocks: dict, length: int) -> TrainingData:
    """The `TrainingData` of a run: files, validation source, and the numbers of documents and blocks (unknown
    when streaming)."""
    if corpus_args.validation_file:
        validation = "validation files: " + ", ".join(f"`{path}`" for path in corpus_args.validation_file)
    else:
        validation = f"{corpus_args.validation_split_percentage:g}% of the training documents, evenly spaced"

    def count(dataset):
        return None if isinstance(dataset, datasets.IterableDataset) else len(dataset)

    return TrainingData(
        train_files=list(corpus_args.train_file or []),
        validation=validation,
        block_length=length,
        documents={split: count(dataset) for split, dataset in documents.items()},
        blocks={split: count(dataset) for split, dataset in blocks.items()},
    )
