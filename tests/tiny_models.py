"""Tiny model configurations shared by the tests."""

from reformer_ko import ReformerKoConfig


def tiny_config(**overrides) -> ReformerKoConfig:
    """A model small enough for unit tests: 2 layers of width 32, buckets of 16 tokens, 256-token context."""
    fields = dict(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=256,
        bucket_size=16,
        num_hashes=2,
        hidden_dropout_prob=0.0,
    )
    fields.update(overrides)
    return ReformerKoConfig(**fields)
