"""The training commands (`reformer-ko pretrain mlm|clm|electra`, `reformer-ko korquad`): each a `main`-style
function taking the command-line arguments, called by the CLI, `examples/run_*.py` and the demo."""
