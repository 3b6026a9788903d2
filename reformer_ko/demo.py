"""`reformer-ko demo`: the whole road on data the package ships, in a few minutes on a laptop CPU.

It trains a WordPiece tokenizer, pretrains a tiny masked LM (and, with `--all`, a causal LM and ELECTRA),
fine-tunes it on a KorQuAD-format set and scores held-apart questions with the official metric, then reloads the
Hub-ready checkpoint with `AutoModelForQuestionAnswering` and `pipeline("question-answering")`. The training steps
are the example scripts themselves (`examples/run_*.py` of a reformer-ko clone), run at a tiny size.
"""

import importlib.util
import json
import time
from pathlib import Path

DEMO_DATA = Path(__file__).parent / "demo_data"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Small enough to train 600 steps on two CPU cores in about a minute. Learned absolute positions: at this size
# they learn in a few hundred steps what rotary positions take longer to.
TINY_MODEL = (
    "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,max_position_embeddings=256,bucket_size=32,num_hashes=2,"
    "position_embedding_type=\"absolute\""
)


def add_demo_arguments(parser):
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--corpus", nargs="+", default=[str(DEMO_DATA / "corpus.txt")], help="pretraining corpus")
    parser.add_argument("--korquad-train", default=str(DEMO_DATA / "korquad_train.json"), help="KorQuAD-format QA set to fine-tune on")
    parser.add_argument("--korquad-eval", default=str(DEMO_DATA / "korquad_eval.json"), help="KorQuAD-format QA set to score")
    parser.add_argument("--output-dir", default="outputs/demo", help="where everything is written")
    parser.add_argument("--steps", type=int, default=600, help="training steps of each pretraining run")
    parser.add_argument("--qa-steps", type=int, default=400, help="fine-tuning steps on the QA set")
    parser.add_argument("--vocab-size", type=int, default=8000, help="WordPiece vocabulary size")
    parser.add_argument("--all", action="store_true", help="also pretrain a causal LM and ELECTRA")
    return run_demo


def run_example(name, arguments):
    """Run `examples/<name>.py` in this process, as `python examples/<name>.py ARGUMENTS` would."""
    path = EXAMPLES / f"{name}.py"
    if not path.is_file():
        raise SystemExit(
            f"The demo runs the example scripts of a reformer-ko clone, and {path} is missing: run it from a clone "
            "(git clone …; make demo)."
        )
    spec = importlib.util.spec_from_file_location(f"reformer_ko_examples_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(argument) for argument in arguments])


def training_arguments(output_dir, steps):
    return [
        "--output_dir", output_dir, "--max_steps", steps, "--per_device_train_batch_size", 8,
        "--per_device_eval_batch_size", 16, "--learning_rate", "1e-3", "--warmup_steps", steps // 10,
        "--logging_steps", max(1, steps // 10), "--save_strategy", "no", "--report_to", "none", "--seed", 42,
    ]


def losses(output_dir):
    """First and last logged training loss of a finished run."""
    history = json.loads((Path(output_dir) / "trainer_state.json").read_text())["log_history"]
    logged = [entry["loss"] for entry in history if "loss" in entry]
    return logged[0], logged[-1]


def pretrain(script, output_dir, tokenizer_dir, corpus, steps, extra=(), config_overrides=TINY_MODEL):
    run_example(
        script,
        ["--config_preset", "mlm-small", "--config_overrides", config_overrides, "--tokenizer_name", tokenizer_dir,
         "--train_file", *corpus, "--validation_split_percentage", 10, "--do_train", "--do_eval", *extra,
         *training_arguments(output_dir, steps)],
    )
    first, last = losses(output_dir)
    return f"loss {first:.2f} → {last:.2f} in {steps} steps"


def answer_a_question(qa_dir, eval_file):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, pipeline

    from reformer_ko.korquad import load_korquad  # importing reformer_ko registers the Auto classes and the pipeline

    model = AutoModelForQuestionAnswering.from_pretrained(qa_dir)
    answerer = pipeline("question-answering", model=model, tokenizer=AutoTokenizer.from_pretrained(qa_dir))
    example = load_korquad(eval_file)[0]
    answer = answerer(question=example["question"], context=example["context"])["answer"]
    return example["question"], answer, example["answers"]["text"][0]


def run_demo(args):
    import torch

    from reformer_ko.tokenization import train_tokenizer

    # The demo's models are tiny: intra-op threads gain nothing and, on a busy machine, cost many times the step.
    torch.set_num_threads(1)

    out = Path(args.output_dir)
    summary = []

    def step(name, action):
        started = time.perf_counter()
        result = action()
        summary.append((name, result, time.perf_counter() - started))
        print(f"\n=== {name}: {result}\n", flush=True)

    tokenizer_dir = out / "tokenizer"
    step(
        "1. WordPiece tokenizer",
        lambda: f"{len(train_tokenizer(args.corpus, tokenizer_dir, vocab_size=args.vocab_size, show_progress=True))} tokens",
    )
    # Sparse prediction: the LM head only at the masked positions, the same loss for less work.
    mlm_overrides = TINY_MODEL + ",sparse_prediction=true"
    step(
        "2. masked LM pretraining",
        lambda: pretrain(
            "run_mlm", out / "mlm", tokenizer_dir, args.corpus, args.steps, ["--max_seq_length", 128], mlm_overrides
        ),
    )
    if args.all:
        step(
            "2b. causal LM pretraining",
            lambda: pretrain("run_clm", out / "clm", tokenizer_dir, args.corpus, args.steps, ["--block_size", 128]),
        )
        step(
            "2c. ELECTRA pretraining",
            lambda: pretrain("run_electra", out / "electra", tokenizer_dir, args.corpus, args.steps, ["--max_seq_length", 128]),
        )

    qa_dir = out / "korquad"

    def fine_tune():
        metrics = run_example(
            "run_korquad",
            ["--model_name_or_path", out / "mlm", "--train_file", args.korquad_train,
             "--validation_file", args.korquad_eval, "--do_train", "--do_eval", "--max_seq_length", 256,
             "--doc_stride", 64, "--max_query_length", 32, *training_arguments(qa_dir, args.qa_steps)],
        )
        first, last = losses(qa_dir)
        return (
            f"loss {first:.2f} → {last:.2f}; EM {metrics['eval_exact_match']:.1f} / F1 {metrics['eval_f1']:.1f} "
            f"on held-apart questions (official KorQuAD v1.0 metric)"
        )

    step("3. KorQuAD fine-tuning and evaluation", fine_tune)
    step("4. Hub-ready checkpoint", lambda: f"{qa_dir} ({', '.join(sorted(p.name for p in qa_dir.iterdir() if p.is_file()))})")

    def ask():
        question, answer, gold = answer_a_question(qa_dir, args.korquad_eval)
        return f"Q: {question} → A: {answer!r} (gold: {gold!r})"

    step("5. pipeline('question-answering') from the saved checkpoint", ask)

    print("\nreformer-ko demo: summary\n")
    for name, result, seconds in summary:
        print(f"  {name:<58} {seconds:7.1f} s   {result}")
    print(
        f"\nEverything is in {out}/. For real data, see docs/quickstart.md, e.g.:\n"
        f"  reformer-ko train-tokenizer --corpus kowiki.txt --output tokenizer\n"
        f"  python examples/run_mlm.py --config_preset mlm-small --tokenizer_name tokenizer --train_file kowiki.txt "
        f"--do_train --do_eval --output_dir mlm-small\n"
        f"  python examples/run_korquad.py --model_name_or_path mlm-small --train_file KorQuAD_v1.0_train.json "
        f"--validation_file KorQuAD_v1.0_dev.json --do_train --do_eval --output_dir korquad\n"
    )
    return 0
