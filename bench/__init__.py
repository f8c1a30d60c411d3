"""Benchmarks: what otel_runtime costs on top of bare OpenTelemetry, its memory, its export throughput.

Run from the repository root::

    pip install -e '.[bench]'
    python -m bench                  # every row; prints one table and writes bench/results.md
    python -m bench --rows task,log  # some rows only (nothing is written)
    python -m bench --profile task   # one row under pyinstrument

Each row times ours and its floor side by side in the same process, in interleaved rounds, and reports
medians (``bench._timing``). The Prefect row appears when ``prefect`` is importable
(``pip install prefect`` into the same environment; the ``bench`` extra does not require it).
"""
