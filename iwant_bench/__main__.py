"""Run the benchmark: ``python -m iwant_bench --help``."""

from .cli import main

raise SystemExit(main())
