import re

import pytest
from transformers import AutoConfig

from reformer_ko import PRESETS, ReformerKoConfig


def test_presets_have_the_original_project_sizes():
    mlm = ReformerKoConfig.from_preset("mlm-small")
    assert (mlm.hidden_size, mlm.num_hidden_layers, mlm.num_attention_heads) == (512, 6, 8)
    assert (mlm.max_position_embeddings, mlm.vocab_size, mlm.is_decoder) == (512, 22000, False)
    clm = ReformerKoConfig.from_preset("clm-gpt3-small")
    assert (clm.hidden_size, clm.num_hidden_layers, clm.num_attention_heads) == (768, 12, 12)
    assert (clm.max_position_embeddings, clm.position_embedding_type, clm.is_decoder) == (5120, "axial", True)
    electra = ReformerKoConfig.from_preset("electra-small-discriminator")
    assert (electra.hidden_size, electra.embedding_size) == (256, 128)


def test_preset_fields_can_be_overridden():
    config = ReformerKoConfig.from_preset("mlm-small", vocab_size=8000)
    assert config.vocab_size == 8000 and config.hidden_size == 512


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="mlm-small"):
        ReformerKoConfig.from_preset("mlm-huge")


def test_num_buckets_is_fixed_by_the_context_length():
    assert ReformerKoConfig(max_position_embeddings=512, bucket_size=64).num_buckets == 8
    assert ReformerKoConfig(max_position_embeddings=5120, bucket_size=64).num_buckets == 80


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(hidden_size=100, num_attention_heads=8), "divisible by num_attention_heads"),
        (dict(max_position_embeddings=500), "multiple of 2 \\* bucket_size"),
        (dict(position_embedding_type="sinusoidal"), "position_embedding_type"),
        (dict(position_embedding_type="axial", axial_position_shape=(4, 64)), "product"),
        (dict(num_buckets=7), "num_buckets"),
        (dict(num_hashes=0), "num_hashes"),
    ],
)
def test_invalid_config_says_what_to_change(fields, message):
    with pytest.raises(ValueError, match=message):
        ReformerKoConfig(**fields)


@pytest.mark.parametrize(
    "fields, problem",
    [
        (dict(hidden_size="abc"), "hidden_size must be an integer >= 1, got 'abc'"),
        (dict(bucket_size=0), "bucket_size must be an integer >= 1, got 0"),
        (dict(num_attention_heads=0), "num_attention_heads must be an integer >= 1, got 0"),
        (dict(num_hidden_layers=True), "num_hidden_layers must be an integer >= 1, got True"),
        (dict(max_position_embeddings=512.0), "max_position_embeddings must be an integer >= 1, got 512.0"),
        (dict(type_vocab_size=-1), "type_vocab_size must be an integer >= 0, got -1"),
        (dict(reverse_thres=None), "reverse_thres must be an integer >= 0, got None"),
        (dict(embedding_size=0), "embedding_size must be an integer >= 1, got 0"),
        (dict(num_buckets="8"), "num_buckets must be an integer >= 2, got '8'"),
        (
            dict(position_embedding_type="axial", axial_position_shape=5),
            "axial_position_shape must be two positive integers, got 5",
        ),
        (dict(axial_position_shape=(8, 0)), "axial_position_shape must be two positive integers, got (8, 0)"),
    ],
)
def test_a_number_of_the_wrong_type_or_out_of_range_is_a_one_line_value_error(fields, problem):
    with pytest.raises(ValueError, match=f"^Invalid ReformerKoConfig: {re.escape(problem)}\\.$"):
        ReformerKoConfig(**fields)


def test_every_wrong_number_is_listed_in_the_one_message():
    with pytest.raises(ValueError) as error:
        ReformerKoConfig(vocab_size=0, hidden_size="abc", axial_position_shape=[4, "a"])
    assert str(error.value) == (
        "Invalid ReformerKoConfig: vocab_size must be an integer >= 1, got 0; hidden_size must be an integer >= 1, "
        "got 'abc'; axial_position_shape must be two positive integers, got [4, 'a']."
    )


def test_zero_segment_types_and_reverse_threshold_are_valid():
    config = ReformerKoConfig(type_vocab_size=0, reverse_thres=0)
    assert (config.type_vocab_size, config.reverse_thres) == (0, 0)


def test_config_round_trips_through_auto_config(tmp_path):
    config = ReformerKoConfig.from_preset("clm-gpt3-small")
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ReformerKoConfig)
    assert loaded.axial_position_shape == (80, 64)
    assert loaded.to_diff_dict() == config.to_diff_dict()


def test_every_preset_builds_a_valid_config():
    for name in PRESETS:
        assert ReformerKoConfig.from_preset(name).model_type == "reformer_ko"
