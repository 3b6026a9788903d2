"""Throughput, time per stage and peak memory of `reformer-ko prepare-corpus` on Wikipedia-like dumps.

    python benchmarks/prepare_corpus.py [--sample FILE] [--copies 1 3 9] [--num-workers 2] [--work-dir DIR]

The dumps are made from the kowiki sample (one sentence per line, a blank line between documents): each document
becomes an article with an infobox template, references, links, a heading every three paragraphs, a list and a
category, as in kowiki's `pages-articles.xml.bz2`. `--copies N` repeats the sample N times, each copy with every
document's sentences rotated by the copy's number (and the copy's number added where rotation comes full circle),
so that copies are not exact duplicates, which deduplication would drop before the expensive splitting. Measured:

- end to end, each size in a fresh process (`prepare_corpus`, as the CLI runs it): MB/s of the sample text the
  dump holds, the share of the wall time in each stage, and the process's peak RSS;
- each stage alone on the smallest dump, in this process: seconds per MB of text for extraction (bz2, XML,
  wikiextractor), cleaning, sentence splitting on 1 and on `--num-workers` threads, and writing;
- the memory deduplication costs per million documents.

Prints Markdown tables for docs/benchmarks.md. Without the sample it says so and exits with status 0.
"""

import argparse
import bz2
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_SAMPLE = REPO / ".." / "shared" / "data" / "kowiki" / "kowiki_sample.sent.txt"
SENTENCES_PER_PARAGRAPH = 4


def sample_documents(path):
    """The sample's documents, each a list of sentences."""
    documents, document = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            document.append(line.strip())
        elif document:
            documents.append(document)
            document = []
    if document:
        documents.append(document)
    return documents


def article(title, sentences):
    """Wikitext of one article holding `sentences`, with the markup a kowiki article has."""
    size = SENTENCES_PER_PARAGRAPH
    paragraphs = [sentences[start : start + size] for start in range(0, len(sentences), size)]
    lines = [f"{{{{정보상자 문서\n| 이름 = {title}\n| 설명 = {sentences[0][:20]}\n}}}}"]
    for index, paragraph in enumerate(paragraphs):
        if index and index % 3 == 0:
            lines.append(f"== 단락 {index // 3} ==")
        first, *rest = paragraph[0].split(" ", 1)
        text = " ".join([f"[[{first}]] {' '.join(rest)}".strip(), *paragraph[1:]])
        lines.append(f'{text}<ref name="r{index}">{{{{웹 인용|url=https://example.org/{index}|제목=출처}}}}</ref>')
    lines += ["== 같이 보기 ==", f"* [[{title}]]", "", f"[[분류:{title}]]"]
    return "\n".join(lines)


def write_dump(documents, copies, path):
    """A bz2 MediaWiki dump of the documents, `copies` times; returns the bytes of sample text it holds."""
    text_bytes = 0
    with bz2.open(path, "wt", encoding="utf-8") as dump:
        dump.write('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="ko">\n')
        page_id = 0
        for copy in range(copies):
            for number, sentences in enumerate(documents):
                page_id += 1
                shift = copy % len(sentences)
                sentences = sentences[shift:] + sentences[:shift]
                if copy >= len(sentences):  # rotation alone would repeat the document exactly
                    sentences[-1] += f" ({copy})"
                text_bytes += sum(len(sentence.encode("utf-8")) + 1 for sentence in sentences) + 1
                wikitext = article(f"문서 {number}", sentences)
                dump.write(
                    f"<page><title>문서 {page_id}</title><ns>0</ns><id>{page_id}</id><revision><id>{page_id}</id>"
                    f'<text xml:space="preserve">{escape(wikitext)}</text></revision></page>\n'
                )
        dump.write("</mediawiki>\n")
    return text_bytes


def measure_one_run(dump, output, num_workers):
    """Run `prepare_corpus` on one dump in this (fresh) process; print its summary and peak RSS as JSON."""
    from reformer_ko.data.prepare import prepare_corpus

    start = time.perf_counter()
    summary = prepare_corpus(dump, output, num_workers=num_workers)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "stage_seconds": summary.stage_seconds,
                "documents_written": summary.documents_written,
                "sentences_written": summary.sentences_written,
                "output_bytes": sum(summary.files.values()),
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_rss_bytes": usage.ru_maxrss * 1024,
            }
        )
    )


def end_to_end(dump, work_dir, num_workers):
    output = Path(tempfile.mkdtemp(dir=work_dir)) / "corpus"
    result = subprocess.run(
        [sys.executable, __file__, "--measure-one-run", str(dump), str(output), "--num-workers", str(num_workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def stage_costs(dump, num_workers, rounds):
    """Seconds of each stage run alone over the whole dump, one after the other; sentence splitting on 1 and on
    `num_workers` threads in alternating rounds (the best of each), so that both see the same machine load."""
    from reformer_ko.data.cleaning import DocumentCleaner
    from reformer_ko.data.prepare import _ShardWriter
    from reformer_ko.data.sentences import SentenceSplitter
    from reformer_ko.data.sources import read_source

    seconds = {}
    start = time.perf_counter()
    documents = list(read_source(dump, "wiki-dump"))
    seconds["extraction (bz2, XML, wikiextractor)"] = time.perf_counter() - start
    cleaner = DocumentCleaner()
    start = time.perf_counter()
    cleaned = [paragraphs for paragraphs in map(cleaner.clean, documents) if paragraphs]
    seconds["cleaning"] = time.perf_counter() - start
    for _ in range(rounds):
        for workers in sorted({1, num_workers}):
            splitter = SentenceSplitter(workers)
            start = time.perf_counter()
            split = list(splitter.split_documents(cleaned))
            name = f"sentence splitting, {workers} thread{'s' if workers > 1 else ''} (best of {rounds})"
            seconds[name] = min(seconds.get(name, float("inf")), time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        with _ShardWriter(Path(directory), 128 * 2**20) as writer:
            for sentences in split:
                writer.write(sentences)
        writer.publish_names()
        seconds["writing"] = time.perf_counter() - start
    return seconds


def deduplication_bytes_per_million():
    """Bytes a set of one million 16-byte digests takes, as `DocumentCleaner` keeps them."""
    import hashlib

    tracemalloc.start()
    digests = {hashlib.blake2b(index.to_bytes(8, "little"), digest_size=16).digest() for index in range(10**6)}
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del digests
    return size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="corpus-format text the dumps are made of")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 3, 9], help="dump sizes, in copies of the sample")
    parser.add_argument("--num-workers", type=int, default=2, help="sentence-splitting threads (default: 2)")
    parser.add_argument("--split-rounds", type=int, default=2, help="alternating rounds of 1 and N threads")
    parser.add_argument("--work-dir", type=Path, help="where the dumps and corpora go (default: a temporary directory)")
    parser.add_argument("--measure-one-run", nargs=2, metavar=("DUMP", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_one_run:
        measure_one_run(*args.measure_one_run, args.num_workers)
        return 0
    if not args.sample.is_file():
        print(f"No sample at {args.sample}: nothing to measure (pass --sample with a corpus-format file).")
        return 0

    with tempfile.TemporaryDirectory(dir=args.work_dir) as work_dir:
        work_dir = Path(work_dir)
        documents = sample_documents(args.sample)
        print(f"sample: {args.sample.name}, {len(documents)} documents; {args.num_workers} sentence-splitting threads; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start\n")  # fmt: skip
        rows = []
        for copies in sorted(args.copies):
            dump = work_dir / f"kowiki-x{copies}.xml.bz2"
            text_bytes = write_dump(documents, copies, dump)
            load = os.getloadavg()[0]
            result = end_to_end(dump, work_dir, args.num_workers)
            rows.append((copies, text_bytes, dump.stat().st_size, result))
            print(f"sample × {copies}: load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
        print(
            "| dump | text MB | .bz2 MB | documents | sentences | seconds | MB/s of text | CPU s per MB | peak RSS MB "
            "| extraction | cleaning | sentence splitting | writing |\n" + "|---" * 13 + "|"
        )
        for copies, text_bytes, bz2_bytes, result in rows:
            text_mb = text_bytes / 1e6
            cells = [
                f"sample × {copies}", f"{text_mb:.1f}", f"{bz2_bytes / 1e6:.1f}", f"{result['documents_written']:,}",
                f"{result['sentences_written']:,}", f"{result['seconds']:.1f}", f"{text_mb / result['seconds']:.3f}",
                f"{result['cpu_seconds'] / text_mb:.1f}", f"{result['peak_rss_bytes'] / 2**20:.0f}",
                *(f"{seconds / result['seconds']:.0%}" for seconds in result["stage_seconds"].values()),
            ]  # fmt: skip
            print("| " + " | ".join(cells) + " |")

        smallest = work_dir / f"kowiki-x{min(args.copies)}.xml.bz2"
        text_mb = rows[0][1] / 1e6
        costs = stage_costs(smallest, args.num_workers, args.split_rounds)
        print(f"\nEach stage alone on sample × {min(args.copies)} ({text_mb:.1f} MB of text):\n")
        print("| stage | seconds | MB/s of text |")
        print("|---|---|---|")
        for stage, seconds in costs.items():
            print(f"| {stage} | {seconds:.2f} | {text_mb / seconds:.2f} |")
        print(f"\nDeduplication: {deduplication_bytes_per_million() / 2**20:.0f} MB per million documents.")
        print(f"Load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
