"""How close generation through the LSH cache stays to the full forward, on a trained causal LM (issue 13):

- perplexity of held-out text scored through the cache (a prompt of the first tokens in one forward, then every
  later token alone against the cache) beside the perplexity of one full forward over each block;
- greedy continuations of held-out prompts through the cache beside recomputing the prefix at every step
  (`use_cache=False`): the share of identical tokens, of identical continuations, and where they first differ.

    reformer-ko demo --all --output-dir outputs/demo       # trains a tiny causal LM in outputs/demo/clm
    python benchmarks/generation_quality.py --model outputs/demo/clm \\
        --text ../shared/data/kowiki/kowiki_sample.sent.txt
    python benchmarks/generation_quality.py --dry-run      # a tiny random model on random tokens, seconds

The text is cut into blocks as the causal-LM training cuts its corpus (documents joined by [SEP],
`reformer_ko.data.corpus.pack_causal_blocks`), of the length the model was trained on (`--block-size`).
"""

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_and_versions  # noqa: E402
from benchmarks.reports import RESULTS, write_results  # noqa: E402


def held_out_blocks(model_dir, text_files, block_size, count):
    """The first `count` blocks of `block_size` tokens of the text, tokenized by the model's tokenizer."""
    import datasets
    from transformers import AutoTokenizer

    import reformer_ko  # noqa: F401 - registers reformer-ko's tokenizer with AutoTokenizer
    from reformer_ko.data.corpus import pack_causal_blocks, read_documents

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    documents = datasets.Dataset.from_dict({"sentences": list(read_documents(text_files))})
    blocks = pack_causal_blocks(documents, tokenizer, block_size)
    return torch.tensor(blocks[: min(count, len(blocks))]["input_ids"])


def cache_of(output):
    return getattr(output, "cache", None) or output.past_key_values


def negative_log_likelihoods(logits, blocks):
    """Each next token's negative log-likelihood, (blocks, length - 1)."""
    return F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), blocks[:, 1:], reduction="none")


def perplexities(model, blocks, prompt_tokens, batch_size):
    """Perplexity of the blocks' tokens after the first `prompt_tokens`, scored in one forward per block and
    through the cache (the first `prompt_tokens` in one forward that fills it, then each later token alone)."""
    full, cached = [], []
    with torch.no_grad():
        for batch in blocks.split(batch_size):
            full.append(negative_log_likelihoods(model(batch).logits, batch)[:, prompt_tokens - 1 :])
            prompt = model(batch[:, :prompt_tokens], use_cache=True)
            rest = model(batch[:, prompt_tokens:], past_key_values=cache_of(prompt))
            logits = torch.cat([prompt.logits, rest.logits], dim=1)
            cached.append(negative_log_likelihoods(logits, batch)[:, prompt_tokens - 1 :])
    full, cached = torch.cat(full), torch.cat(cached)
    return dict(
        prompt_tokens=prompt_tokens,
        scored_tokens=full.numel(),
        perplexity_full_forward=math.exp(full.mean().item()),
        perplexity_through_cache=math.exp(cached.mean().item()),
        relative_difference=math.exp(cached.mean().item() - full.mean().item()) - 1,
    )


def greedy_agreement(model, blocks, prompt_tokens, new_tokens, batch_size):
    """Greedy continuations of each block's first `prompt_tokens` tokens, through the cache and recomputed."""
    continuations = {True: [], False: []}
    for batch in blocks[:, :prompt_tokens].split(batch_size):
        for use_cache in continuations:
            sequences = model.generate(
                batch,
                attention_mask=torch.ones_like(batch),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=model.config.pad_token_id,
                use_cache=use_cache,
            )
            continuations[use_cache].append(sequences[:, prompt_tokens:])
    same = torch.cat(continuations[True]) == torch.cat(continuations[False])
    first_difference = torch.where(same.all(dim=1), new_tokens, (~same).float().argmax(dim=1))
    return dict(
        prompts=same.shape[0],
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
        identical_tokens=same.float().mean().item(),
        identical_continuations=same.all(dim=1).float().mean().item(),
        mean_first_difference=first_difference.float().mean().item(),
    )


def markdown_report(report):
    lines = [f"## Generation through the cache against the full forward ({report['model']})", "", report["text"], ""]
    lines += [
        "| prompt tokens (full forward) | scored tokens | perplexity, one full forward | perplexity through the cache "
        "| difference |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in report["perplexity"]:
        lines.append(
            f"| {row['prompt_tokens']} | {row['scored_tokens']:,} | {row['perplexity_full_forward']:.3f} | "
            f"{row['perplexity_through_cache']:.3f} | {100 * row['relative_difference']:+.2f}% |"
        )
    greedy = report["greedy"]
    lines += [
        "",
        f"Greedy continuations of {greedy['prompts']} prompts of {greedy['prompt_tokens']} tokens, "
        f"{greedy['new_tokens']} new tokens, through the cache and recomputing the prefix at every step: "
        f"{100 * greedy['identical_tokens']:.1f}% identical tokens, {100 * greedy['identical_continuations']:.1f}% "
        f"identical continuations, first difference after {greedy['mean_first_difference']:.1f} tokens on average.",
    ]
    return "\n".join(lines) + "\n"


def tiny_random_model():
    """A tiny untrained causal LM and random blocks (the dry run: every code path, no meaning in the numbers)."""
    from reformer_ko import ReformerKoConfig, ReformerKoForCausalLM

    torch.manual_seed(0)
    config = ReformerKoConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        bucket_size=8,
        num_hashes=2,
        is_decoder=True,
    )
    blocks = torch.randint(5, 120, (6, 64), generator=torch.Generator().manual_seed(0))
    return ReformerKoForCausalLM(config).eval(), blocks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a trained causal LM directory (with its tokenizer)")
    parser.add_argument("--text", type=Path, nargs="+", help="held-out text in the corpus format")
    parser.add_argument("--block-size", type=int, default=128, help="tokens per block (the training length)")
    parser.add_argument("--blocks", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--greedy-prompt", type=int, default=32)
    parser.add_argument("--greedy-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "generation_quality_cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.dry_run:
        model, blocks = tiny_random_model()
        args.prompt_tokens, args.greedy_prompt, args.greedy_new_tokens = [1, 16], 16, 8
        model_name, text = "a tiny random model (dry run)", "Random token blocks."
    else:
        if args.model is None or args.text is None:
            parser.error("--model and --text are required (or --dry-run)")
        from reformer_ko import ReformerKoForCausalLM

        model = ReformerKoForCausalLM.from_pretrained(args.model).eval()
        blocks = held_out_blocks(args.model, args.text, args.block_size, args.blocks)
        model_name = str(args.model)
        text = f"{blocks.shape[0]} blocks of {blocks.shape[1]} tokens from {', '.join(map(str, args.text))}."

    report = dict(
        model=model_name,
        text=text,
        machine=machine_and_versions("cpu", args.threads),
        perplexity=[perplexities(model, blocks, tokens, args.batch_size) for tokens in args.prompt_tokens],
        greedy=greedy_agreement(model, blocks, args.greedy_prompt, args.greedy_new_tokens, args.batch_size),
    )
    stem = args.out / ("generation_quality_dry_run" if args.dry_run else "generation_quality")
    write_results(stem, report, markdown_report(report))
    return report


if __name__ == "__main__":
    main()
