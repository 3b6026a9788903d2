"""Raw text → corpus → documents → training blocks → batches: the data pipeline shared by every entry point."""

from .collators import causal_lm_collator, mlm_collator
from .corpus import CorpusError, corpus_files, load_corpus, pack_causal_blocks, pack_mlm_blocks, read_documents
from .prepare import prepare_corpus

__all__ = [
    "CorpusError",
    "causal_lm_collator",
    "corpus_files",
    "load_corpus",
    "mlm_collator",
    "pack_causal_blocks",
    "pack_mlm_blocks",
    "prepare_corpus",
    "read_documents",
]
