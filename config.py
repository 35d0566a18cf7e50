"""errbot configuration for iwant, read from environment variables with safe defaults.

Run the bot with ``errbot -c config.py``. Nothing here needs editing for a local run:
the Text backend and a SQLite file in ``data/`` are the defaults.
"""

import logging
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


BACKEND = _env("IWANT_BACKEND", "Text")
BOT_EXTRA_BACKEND_DIR = _env("IWANT_BACKEND_DIR", str(HERE / "adapters"))
BOT_EXTRA_PLUGIN_DIR = str(HERE / "iwant_plugins")

# In a checkout, data/ beside this file; installed (``iwant run``), data/ where it runs.
_CHECKOUT = (HERE / "pyproject.toml").is_file()
BOT_DATA_DIR = _env("IWANT_DATA_DIR", str((HERE if _CHECKOUT else Path.cwd()) / "data"))
Path(BOT_DATA_DIR).mkdir(parents=True, exist_ok=True)
BOT_LOG_FILE = _env("IWANT_LOG_FILE") or None
BOT_LOG_LEVEL = getattr(logging, _env("IWANT_LOG_LEVEL", "INFO").upper(), logging.INFO)
if _env("IWANT_LOG_FORMAT").lower() == "json":  # one JSON object a line, from the first
    from iwant_platform.redaction import redact

    from iwant_ops.jsonlog import JsonFormatter

    BOT_LOG_FORMATTER = JsonFormatter(redact)

BOT_PREFIX = _env("IWANT_BOT_PREFIX", "!")
BOT_PREFIX_OPTIONAL_ON_CHAT = False
# errbot answers unknown commands with a suggestion; keep that, it helps with typos.
SUPPRESS_CMD_NOT_FOUND = False

# Platform identities, read by our own backends in adapters/. Tokens never appear in a log line.
_IDENTITIES = {
    "IWantTelegram": {
        "token": _env("TELEGRAM_TOKEN"),
        "base_url": _env("TELEGRAM_API_URL") or None,
    },
    "IWantSlack": {
        "token": _env("SLACK_BOT_TOKEN"),
        "app_token": _env("SLACK_APP_TOKEN"),
        "base_url": _env("SLACK_API_URL") or None,
    },
    # MATRIX_ACCESS_TOKEN, or MATRIX_PASSWORD (the bot then keeps its session in
    # IWANT_DATA_DIR); docs/matrix.md.
    "IWantMatrix": {
        "homeserver": _env("MATRIX_HOMESERVER"),
        "user_id": _env("MATRIX_USER_ID"),
        "access_token": _env("MATRIX_ACCESS_TOKEN"),
        "password": _env("MATRIX_PASSWORD"),
    },
    # XMPP_SERVER is host:port (empty: the JID's domain, through DNS SRV); XMPP_TLS,
    # XMPP_ROOMS and XMPP_NICK are read by the backend (docs/xmpp.md).
    "IWantXMPP": {
        "username": _env("XMPP_JID"),
        "password": _env("XMPP_PASSWORD"),
        "server": _env("XMPP_SERVER") or None,
    },
}
_IDENTITIES["XMPP"] = _IDENTITIES["IWantXMPP"]  # errbot's own backend reads the same
BOT_IDENTITY = _IDENTITIES.get(BACKEND, {})

_default_admin = {"Text": "@localuser"}.get(BACKEND, "")
BOT_ADMINS = tuple(
    a.strip() for a in _env("IWANT_BOT_ADMINS", _default_admin).split(",") if a.strip()
) or ("@localuser",)
BOT_ADMINS_NOTIFICATIONS = ()

# VersionChecker calls out to the internet; Webserver and friends are not needed.
CORE_PLUGINS = ("ACLs", "Help", "Health", "Plugins", "Utils", "CommandNotFoundFilter")
if BACKEND == "Text":  # !asuser, !asadmin, !inroom, !ml: the console plays several people
    CORE_PLUGINS += ("TextCmds",)
AUTOINSTALL_DEPS = False
BOT_ASYNC = True
BOT_ASYNC_POOLSIZE = int(_env("IWANT_COMMAND_THREADS", "10"))
