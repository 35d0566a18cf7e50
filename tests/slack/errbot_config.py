"""errbot configuration for the Slack backend tests: the project's config.py, with the
test-only SlackProbe plugin as the only extra plugin (so these tests do not depend on the
iwant plugin's state)."""

import runpy
from pathlib import Path

HERE = Path(__file__).resolve().parent
_base = runpy.run_path(str(HERE.parent.parent / "config.py"))
globals().update({k: v for k, v in _base.items() if k.isupper()})

BOT_EXTRA_PLUGIN_DIR = str(HERE / "errbot_plugins")
