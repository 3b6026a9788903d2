"""Pushing to the Hub end to end, against a stand-in for its HTTP API on the loopback address (tests/hub_server.py).

A masked-LM pretraining run pushes every checkpoint (`--hub_strategy every_save`); a KorQuAD run starts from that
repository and pushes at the end (`--hub_strategy end`); a Python process pushes a model and its tokenizer with
`push_to_hub()`. The stand-in keeps every commit, so each push is checked whole: a pushed model always has its
weights (those of a complete checkpoint), its code, its tokenizer; the run's own files never go up. The
repositories then load in a Python process where reformer_ko cannot be imported (`trust_remote_code=True`), with
the outputs of the models the runs saved.
"""

import json
import re

import pytest
import torch
from huggingface_hub import ModelCard
from korquad_fixtures import QUIET
from pretraining_fixtures import (
    CORPUS,
    EXAMPLES,
    TINY_ELECTRA,
    TINY_MLM,
    common_arguments,
    run_python,
    small_tokenizer,
)
from transformers import AutoModelForMaskedLM, AutoModelForQuestionAnswering, AutoTokenizer, pipeline

from reformer_ko.training.hub import model_code_files

DEMO = CORPUS.parent
PRETRAINED, FINE_TUNED, FROM_PYTHON, ELECTRA = "mlm-every-save", "korquad-end", "python-push", "electra-every-save"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
FILL_MASK_TEXT = "김치는 한국의 대표적인 [MASK]이다."
# Files of a run that are not the model's: the run record and staging folder ("_*"), checkpoints.
NEVER_PUSHED = re.compile(r"(^|/)(_|checkpoint-\d+)")


def repo_id(hub, name):
    return f"{hub.user}/{name}"


def pretrain_and_push(hub, tmp_path, script, preset, overrides, name, *extra):
    """A pretraining run that saves (and pushes) at steps 2 and 4, and pushes the final model; its output directory."""
    output_dir = tmp_path / "output"
    run_python(
        [
            EXAMPLES / script,
            *common_arguments(small_tokenizer(tmp_path / "tokenizer"), output_dir, tmp_path / "cache"),
            "--config_preset", preset, "--config_overrides", overrides, "--max_train_samples", "8",
            "--do_train", "--max_steps", "4", "--per_device_train_batch_size", "4", "--save_steps", "2",
            "--push_to_hub", "--hub_model_id", name, "--hub_strategy", "every_save", *extra,
        ],
        tmp_path,
        environment=hub.environment,
        timeout=300,
    )  # fmt: skip
    return output_dir


@pytest.fixture(scope="module")
def pretrained(hub, tmp_path_factory):
    """A masked-LM run pushing every checkpoint, which also evaluates."""
    tmp_path = tmp_path_factory.mktemp("pretraining")
    evaluation = ["--validation_split_percentage", "10", "--max_eval_samples", "4", "--do_eval"]
    return pretrain_and_push(hub, tmp_path, "run_mlm.py", "mlm-small", TINY_MLM, PRETRAINED, *evaluation)


@pytest.fixture(scope="module")
def electra(hub, tmp_path_factory):
    """An ELECTRA run pushing every checkpoint: the discriminator, and the generator in `generator/`."""
    tmp_path = tmp_path_factory.mktemp("electra")
    return pretrain_and_push(
        hub, tmp_path, "run_electra.py", "electra-small-discriminator", TINY_ELECTRA, ELECTRA,
        "--validation_split_percentage", "0",
    )  # fmt: skip


@pytest.fixture(scope="module")
def fine_tuned(hub, pretrained, tmp_path_factory):
    """A KorQuAD run from the pretraining run's repository (model and tokenizer from the Hub), pushed at the end."""
    tmp_path = tmp_path_factory.mktemp("korquad")
    output_dir = tmp_path / "output"
    run_python(
        [
            EXAMPLES / "run_korquad.py",
            "--model_name_or_path", repo_id(hub, PRETRAINED),
            "--train_file", DEMO / "korquad_train.json", "--validation_file", DEMO / "korquad_eval.json",
            "--do_train", "--do_eval", "--max_train_samples", "16", "--max_eval_samples", "8",
            "--max_seq_length", "96", "--doc_stride", "32", "--max_query_length", "24",
            "--max_steps", "4", "--per_device_train_batch_size", "8", "--output_dir", output_dir, *QUIET,
            "--push_to_hub", "--hub_model_id", FINE_TUNED, "--hub_strategy", "end",
        ],
        tmp_path,
        environment=hub.environment,
        timeout=300,
    )  # fmt: skip
    return output_dir


PUSH_FROM_PYTHON = """
import sys
import reformer_ko
from transformers import AutoModelForMaskedLM, AutoTokenizer
directory, repo_id = sys.argv[1:]
AutoModelForMaskedLM.from_pretrained(directory).push_to_hub(repo_id)
AutoTokenizer.from_pretrained(directory).push_to_hub(repo_id)
"""


@pytest.fixture(scope="module")
def pushed_from_python(hub, pretrained, tmp_path_factory):
    """The pretrained model and its tokenizer, pushed from Python by `push_to_hub()` to a new repository."""
    tmp_path = tmp_path_factory.mktemp("python-push")
    run_python(["-c", PUSH_FROM_PYTHON, pretrained, repo_id(hub, FROM_PYTHON)], tmp_path, environment=hub.environment)
    return hub.repository(repo_id(hub, FROM_PYTHON))


LOAD_FROM_THE_HUB = """
import json, sys, torch
sys.modules["reformer_ko"] = None  # reformer-ko is not installed here
import transformers
loads, fill_mask_repo, text = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
outputs = {}
for repo_id, auto_name, tokens in loads:
    model = getattr(transformers, auto_name).from_pretrained(repo_id, trust_remote_code=True).eval()
    assert model.__class__.__module__.startswith("transformers_modules"), model.__class__.__module__
    with torch.no_grad():
        outputs[repo_id] = model(torch.tensor([tokens]))[0].tolist()
fill_mask = transformers.pipeline("fill-mask", model=fill_mask_repo, trust_remote_code=True)
outputs["fill-mask"] = fill_mask(text, top_k=5)
print(json.dumps(outputs))
"""


@pytest.fixture(scope="module")
def tokens(pretrained):
    return AutoTokenizer.from_pretrained(pretrained)(FILL_MASK_TEXT)["input_ids"]


@pytest.fixture(scope="module")
def loaded_from_the_hub(hub, fine_tuned, pushed_from_python, tokens, tmp_path_factory):
    """What the three repositories give, loaded from the stand-in where reformer_ko cannot be imported."""
    tmp_path = tmp_path_factory.mktemp("load")
    loads = [
        (repo_id(hub, PRETRAINED), "AutoModelForMaskedLM", tokens),
        (repo_id(hub, FROM_PYTHON), "AutoModelForMaskedLM", tokens),
        (repo_id(hub, FINE_TUNED), "AutoModelForQuestionAnswering", tokens),
    ]
    result = run_python(
        ["-c", LOAD_FROM_THE_HUB, json.dumps(loads), repo_id(hub, PRETRAINED), FILL_MASK_TEXT],
        tmp_path,
        environment=hub.environment,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def local_outputs(auto_class, directory, tokens):
    model = auto_class.from_pretrained(directory).eval()
    with torch.no_grad():
        return model(torch.tensor([tokens]))[0]


def model_commits(repository):
    """The commits after which the repository holds a model."""
    return [commit for commit in repository.commits if "model.safetensors" in commit.files]


# A pretraining run pushing every checkpoint ----------------------------------------------------------------------


def test_every_push_of_the_pretraining_run_holds_a_whole_model(hub, pretrained):
    expected = {"config.json", "model.safetensors", *TOKENIZER_FILES, *model_code_files(pretrained)}
    commits = model_commits(hub.repository(repo_id(hub, PRETRAINED)))
    assert [commit.message for commit in commits][-2:] == ["Model save", "End of training"]
    for commit in commits:
        assert expected <= set(commit.files), f"{commit.message}: missing {sorted(expected - set(commit.files))}"


def test_checkpoint_pushes_carry_the_weights_of_the_complete_checkpoint_they_name(hub, pretrained):
    pushes = [
        commit for commit in hub.repository(repo_id(hub, PRETRAINED)).commits if commit.message.startswith("Training")
    ]
    assert pushes, "no checkpoint was pushed"
    for commit in pushes:
        step = int(re.fullmatch(r"Training in progress, step (\d+)", commit.message).group(1))
        checkpoint = pretrained / f"checkpoint-{step}"
        assert commit.files["model.safetensors"] == (checkpoint / "model.safetensors").read_bytes(), commit.message
        assert commit.files["config.json"] == (checkpoint / "config.json").read_bytes(), commit.message


def test_electras_checkpoint_pushes_carry_the_checkpoints_generator_whole(hub, electra):
    commits = hub.repository(repo_id(hub, ELECTRA)).commits
    pushes = [commit for commit in commits if commit.message.startswith("Training")]
    assert pushes, "no checkpoint was pushed"
    for commit in pushes:
        step = commit.message.rsplit(" ", 1)[-1]
        generator = electra / f"checkpoint-{step}" / "generator"
        files = {path.name for path in generator.iterdir()}
        assert files >= {"config.json", "model.safetensors", *TOKENIZER_FILES, *model_code_files(generator)}
        assert commit.folder("generator") == {name: (generator / name).read_bytes() for name in files}, commit.message


def test_the_final_push_is_the_saved_output_directory_with_its_card_and_results(hub, pretrained):
    final = hub.repository(repo_id(hub, PRETRAINED)).commits[-1]
    for name in ["model.safetensors", "config.json", *TOKENIZER_FILES, *model_code_files(pretrained), "README.md"]:
        assert final.files[name] == (pretrained / name).read_bytes(), name
    assert {"eval_results.json", "train_results.json", "all_results.json"} <= set(final.files)
    card = ModelCard(final.files["README.md"].decode())
    assert card.data.pipeline_tag == "fill-mask" and card.data.library_name == "transformers"
    assert repo_id(hub, PRETRAINED) in card.text  # the usage code names the repository


def test_the_run_record_staging_folder_and_checkpoints_are_never_pushed(hub, pretrained):
    assert (pretrained / "_reformer_ko_run.json").is_file() and (pretrained / "checkpoint-4").is_dir()
    for commit in hub.repository(repo_id(hub, PRETRAINED)).commits:
        assert not [path for path in commit.files if NEVER_PUSHED.search(path)], commit.message


# A KorQuAD run pushing at the end --------------------------------------------------------------------------------


def test_a_korquad_run_pushing_at_the_end_pushes_only_whole_models(hub, fine_tuned):
    commits = hub.repository(repo_id(hub, FINE_TUNED)).commits
    assert [commit.message for commit in commits] == ["initial commit", "Model save", "End of training"]
    expected = {"config.json", "model.safetensors", "README.md", *TOKENIZER_FILES, *model_code_files(fine_tuned)}
    for commit in commits[1:]:
        assert expected <= set(commit.files) and not [path for path in commit.files if NEVER_PUSHED.search(path)]
    assert commits[-1].files["model.safetensors"] == (fine_tuned / "model.safetensors").read_bytes()


def test_the_korquad_push_carries_the_scores_and_a_card_naming_the_pushed_model_it_started_from(hub, fine_tuned):
    final = hub.repository(repo_id(hub, FINE_TUNED)).commits[-1]
    card = ModelCard(final.files["README.md"].decode())
    assert card.data.pipeline_tag == "question-answering"
    assert card.data.base_model == repo_id(hub, PRETRAINED)
    assert "eval_exact_match" in json.loads(final.files["eval_results.json"])


# push_to_hub from Python -----------------------------------------------------------------------------------------


def test_model_and_tokenizer_push_to_hub_upload_what_save_pretrained_writes(pushed_from_python, pretrained):
    model_push, tokenizer_push = pushed_from_python.commits[1:]
    # transformers adds a model card (README.md) to a repository that has none.
    assert {"config.json", "model.safetensors", "README.md", *model_code_files(pretrained)} == model_push.changed
    assert set(TOKENIZER_FILES) <= tokenizer_push.changed and not tokenizer_push.changed & model_push.changed
    assert model_push.files["model.safetensors"] == (pretrained / "model.safetensors").read_bytes()


# Loading back, without reformer_ko -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, auto_class, directory",
    [
        (PRETRAINED, AutoModelForMaskedLM, "pretrained"),
        (FROM_PYTHON, AutoModelForMaskedLM, "pretrained"),
        (FINE_TUNED, AutoModelForQuestionAnswering, "fine_tuned"),
    ],
)
def test_a_pushed_model_loads_without_reformer_ko_with_the_saved_models_outputs(
    name, auto_class, directory, hub, loaded_from_the_hub, tokens, request
):
    local = local_outputs(auto_class, request.getfixturevalue(directory), tokens)
    assert torch.equal(torch.tensor(loaded_from_the_hub[repo_id(hub, name)]), local)


def test_the_fill_mask_pipeline_from_the_hub_guesses_as_the_saved_model_does(pretrained, loaded_from_the_hub):
    local = pipeline("fill-mask", model=str(pretrained))(FILL_MASK_TEXT, top_k=5)
    remote = loaded_from_the_hub["fill-mask"]
    assert [guess["token"] for guess in remote] == [guess["token"] for guess in local]
    assert [guess["score"] for guess in remote] == pytest.approx([guess["score"] for guess in local], abs=1e-6)


def test_a_push_without_a_token_is_refused(hub, pretrained, tmp_path):
    """The stand-in checks the token as the Hub does, so the pushes above were logged in."""
    result = run_python(
        ["-c", PUSH_FROM_PYTHON, pretrained, repo_id(hub, "anonymous")],
        tmp_path,
        environment={**hub.environment, "HF_TOKEN": None},
        check=False,
    )
    assert result.returncode != 0 and "401" in result.stderr
    assert repo_id(hub, "anonymous") not in hub.repositories
