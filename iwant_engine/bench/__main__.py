"""Run the benchmark: ``python -m iwant_engine.bench --help``."""

from .cli import main

raise SystemExit(main())
