"""A bot process stops cleanly on SIGINT and SIGTERM, even one started with SIGINT ignored
(a script's background job inherits it so): ``shutdown.graceful_sigterm``."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import signal
from iwant_platform.shutdown import graceful_sigterm
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
graceful_sigterm()
handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
print(all(h is signal.default_int_handler for h in handlers))
"""


def test_sigint_inherited_ignored_and_sigterm_both_stop_the_bot_as_ctrl_c_does() -> None:
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)\n{CHECK}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "True"
