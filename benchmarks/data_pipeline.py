"""Throughput of corpus → packed MLM blocks, beside raw `tokenizer(batch)` on the same sentences.

    python benchmarks/data_pipeline.py [--corpus FILE] [--tokenizer DIR] [--workers 1 2] [--repeats 3]

Each pipeline run starts from an empty cache (load_corpus + pack_mlm_blocks, nothing reused), and every
number is the best of `--repeats` runs, interleaved with the raw runs so that both see the same machine
load. Rust-side tokenizer threads are off (TOKENIZERS_PARALLELISM=false) unless set otherwise, so that
"workers" counts the cores in use. Prints a Markdown table for docs/data.md.
"""

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import datasets

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.machine import cpu_model, load_average  # noqa: E402
from reformer_ko.data import load_corpus, pack_mlm_blocks, read_documents  # noqa: E402
from reformer_ko.tokenization import load_tokenizer, train_tokenizer  # noqa: E402

DEFAULT_CORPUS = REPO / ".." / "shared" / "data" / "kowiki" / "kowiki_sample.sent.txt"
RAW_BATCH_SIZE = 1000


def time_raw_tokenization(tokenizer, sentences):
    start = time.perf_counter()
    for index in range(0, len(sentences), RAW_BATCH_SIZE):
        tokenizer(sentences[index : index + RAW_BATCH_SIZE])
    return time.perf_counter() - start


def time_pipeline(corpus, tokenizer, max_seq_length, workers):
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        documents = load_corpus(corpus, num_proc=workers, cache_dir=cache_dir)
        loaded = time.perf_counter()
        blocks = pack_mlm_blocks(documents, tokenizer, max_seq_length, num_proc=workers)
        end = time.perf_counter()
        lengths = [len(ids) for ids in blocks["input_ids"]]
    return (end - start, loaded - start), lengths


def fill_rates(lengths, document_tokens, max_seq_length, pad_to_multiple_of=128):
    """Real tokens per block capacity; the ceiling any packing without mixing documents can reach; padded fill."""
    tokens = sum(lengths)
    fewest_blocks = sum(math.ceil(count / (max_seq_length - 2)) for count in document_tokens)
    ceiling = (sum(document_tokens) + 2 * fewest_blocks) / (fewest_blocks * max_seq_length)
    padded = sum(math.ceil(length / pad_to_multiple_of) * pad_to_multiple_of for length in lengths)
    return tokens / (len(lengths) * max_seq_length), ceiling, tokens / padded


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--tokenizer", type=Path, help="a saved tokenizer directory; trained on the corpus when omitted"
    )
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    # The Rust tokenizer reads this on every call; set before the first one.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    datasets.disable_progress_bars()

    megabytes = args.corpus.stat().st_size / 1e6
    with tempfile.TemporaryDirectory() as tokenizer_dir:
        if args.tokenizer is None:
            start = time.perf_counter()
            train_tokenizer(args.corpus, tokenizer_dir)
            print(f"trained a tokenizer on the corpus in {time.perf_counter() - start:.1f} s")
        tokenizer = load_tokenizer(args.tokenizer or tokenizer_dir)

    documents = list(read_documents(args.corpus))
    sentences = [sentence for document in documents for sentence in document]
    encoded = tokenizer(sentences, add_special_tokens=False)["input_ids"]
    document_tokens, position = [], 0
    for document in documents:
        document_tokens.append(sum(len(ids) for ids in encoded[position : position + len(document)]))
        position += len(document)

    raw_seconds, pipeline_seconds, lengths = [], {workers: [] for workers in args.workers}, None
    for _ in range(args.repeats):
        raw_seconds.append(time_raw_tokenization(tokenizer, sentences))
        for workers in args.workers:
            seconds, lengths = time_pipeline(args.corpus, tokenizer, args.max_seq_length, workers)
            pipeline_seconds[workers].append(seconds)

    raw = min(raw_seconds)
    fill, ceiling, padded_fill = fill_rates(lengths, document_tokens, args.max_seq_length)
    load = load_average()
    print(
        f"\ncorpus: {args.corpus.name}, {megabytes:.2f} MB, {len(documents)} documents, {len(sentences)} sentences, "
        f"{sum(document_tokens)} tokens; vocabulary {len(tokenizer)}; "
        f"{os.cpu_count()} CPUs, {cpu_model()}; "
        f"TOKENIZERS_PARALLELISM={os.environ['TOKENIZERS_PARALLELISM']}; best of {args.repeats}; "
        f"load average at the end {'unknown' if load is None else f'{load:.1f}'}\n"
    )
    print("| step | workers | seconds | of which load_corpus | MB/s of text | × raw tokenization |")
    print("|---|---|---|---|---|---|")
    print(f"| raw `tokenizer(batch)`, batches of {RAW_BATCH_SIZE} sentences | 1 | {raw:.2f} | – | ", end="")
    print(f"{megabytes / raw:.2f} | 1.00 |")
    for workers, runs in pipeline_seconds.items():
        best, loading = min(runs)
        print(
            f"| corpus → {args.max_seq_length}-token MLM blocks (load_corpus + pack_mlm_blocks) | {workers} | "
            f"{best:.2f} | {loading:.2f} | {megabytes / best:.2f} | {best / raw:.2f} |"
        )
    print(f"\n{len(lengths)} blocks of at most {args.max_seq_length} tokens")
    print(f"fill rate (real tokens / ({len(lengths)} × {args.max_seq_length})): {fill:.3f}")
    print(f"ceiling for any packing that keeps documents apart: {ceiling:.3f}")
    print(f"fill rate against each block padded alone to a multiple of 128: {padded_fill:.3f}")


if __name__ == "__main__":
    main()
