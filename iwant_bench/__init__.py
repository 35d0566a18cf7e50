"""``python -m iwant_bench``: how fast iwant matches, how its cost grows, and how it
compares with the database's own limit (issue 7).

Modules: ``workload`` (the seeded, realistic stream and bulk rows of waiting requests),
``databases`` (fresh databases, their settings, the baseline table, bulk loading),
``measure`` (engine vs baseline, growth, sweep, memory), ``processes`` (several engine
processes on PostgreSQL), ``e2e`` (errbot's Test backend), ``report`` (table, targets, JSON),
``rush`` and ``rush_matrix`` (the lunch rush; ``synapse_rig``: a real Synapse for it),
``cli`` (options and order), ``plot`` (the PNG in docs/benchmarks.md; needs matplotlib),
``instructions`` (instructions per submission under callgrind: ``python -m
iwant_bench.instructions``).
"""

from .cli import main

__all__ = ["main"]
