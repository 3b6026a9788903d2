"""Benchmarks of reformer-ko (docs/benchmarks.md): scripts that measure, run as `python benchmarks/<script>.py`,
and the modules they share: `models` (the implementations compared and their inputs), `timing` (running and
timing a case), `overhead` (the wrapper-overhead check), `profiling` (operator profiles), `reports` (JSON,
Markdown, plots) and `machine` (what a measurement ran on)."""
