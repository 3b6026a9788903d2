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
