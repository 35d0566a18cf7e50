"""errbot configuration for the Slack backend tests: the project's config.py, with the
test-only SlackProbe plugin as the only extra plugin (so these tests do not depend on the
iwant plugin's state)."""

import runpy
from pathlib import Path

_tests_dir = Path(__file__).resolve().parent
_base = runpy.run_path(str(_tests_dir.parent.parent / "config.py"))
globals().update({k: v for k, v in _base.items() if k.isupper()})

BOT_EXTRA_PLUGIN_DIR = str(_tests_dir / "errbot_plugins")
