"""The delivery budgets each adapter declares, what one notification spends of them, and how
plugins.cfg ``[pacing]`` overrides them (the plugin's ``budget_limits``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from iwant_platform.contract import Outgoing, Spend
from iwant_platform.errbot_backends import Console, ErrbotBackend
from iwant_slack.backend import IWantSlackBackend
from iwant_telegram.backend import IWantTelegramBackend

from iwant_engine import SettingsError
from iwant_engine.pacing import Limit

PLUGIN = Path(__file__).resolve().parents[2] / "iwant_plugins" / "iwant" / "iwant.py"


def _plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("iwant_plugin_under_test", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin = _plugin()


def spends(backend: type, out: Outgoing) -> list[Spend]:
    """What a backend class says one notification spends (``spends`` reads no state)."""
    return list(backend.spends(object.__new__(backend), out))


def test_slack_spends_a_channel_and_the_workspace_a_group_dm_or_two_posts_in_a_thread() -> None:
    slack = IWantSlackBackend
    assert spends(slack, Outgoing("U1")) == [Spend("workspace"), Spend("channel", "U1")]
    four = tuple(f"U{i}" for i in range(4))
    assert spends(slack, Outgoing("group:4", four, "C1")) == [Spend("workspace"), Spend("open")]
    nine = tuple(f"U{i}" for i in range(9))  # more than a group DM holds: the room's thread
    assert spends(slack, Outgoing("group:5", nine, "C1")) == [
        Spend("workspace", sends=2),
        Spend("channel", "C1", 2),
    ]
    assert spends(slack, Outgoing("group:5", nine, None)) == [], "formed in DMs: sends nothing"


def test_telegram_spends_the_bot_and_a_chat_or_a_group_and_opens_no_groups() -> None:
    tg = IWantTelegramBackend
    assert spends(tg, Outgoing("4242")) == [Spend("bot"), Spend("chat", "4242")]
    assert spends(tg, Outgoing("-100123")) == [Spend("bot"), Spend("group", "-100123")]
    assert spends(tg, Outgoing("group:1", ("1", "2"), None)) == []


class _Mode:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.bot_config = type("Config", (), {"BOT_PREFIX": "!"})


def test_the_platforms_published_limits_are_the_defaults() -> None:
    slack = plugin.budget_limits(IWantSlackBackend, {})
    assert slack == {
        "channel": Limit(1.0, 2),
        "workspace": Limit(10.0, 10),
        "open": Limit(50 / 60, 5),
    }
    telegram = plugin.budget_limits(IWantTelegramBackend, {})
    assert telegram == {"bot": Limit(30.0, 15), "chat": Limit(1.0, 2), "group": Limit(20 / 60, 3)}


def test_an_errbot_backend_is_paced_only_where_plugins_cfg_says() -> None:
    xmpp = ErrbotBackend(_Mode("xmpp"))
    assert plugin.budget_limits(xmpp, {}) == {}
    assert plugin.budget_limits(xmpp, {"xmpp.chat": Limit(1.0, 2)}) == {"chat": Limit(1.0, 2)}
    console = Console(_Mode("text"))
    assert console.capabilities.shared_screen and not console.capabilities.buttons


def test_overrides_are_checked_against_what_the_platform_declares() -> None:
    limits = plugin.budget_limits(
        IWantTelegramBackend, {"telegram.chat": Limit(2.0, 4), "slack.channel": Limit(9.0, 9)}
    )
    assert limits["chat"] == Limit(2.0, 4), "the override counts"
    assert limits["bot"] == Limit(30.0, 15), "another platform's key is not this bot's"
    with pytest.raises(SettingsError, match=r"\[pacing\] slack\.chanel: unknown; slack has "):
        plugin.budget_limits(IWantSlackBackend, {"slack.chanel": Limit(1.0)})
    with pytest.raises(SettingsError, match="needs a burst of at least 2"):
        plugin.budget_limits(IWantSlackBackend, {"slack.channel": Limit(1.0)})
    assert plugin.budget_limits(IWantTelegramBackend, {"telegram.chat": Limit(1.0)})["chat"] == (
        Limit(1.0, 1)
    ), "a budget where one notification posts once takes a burst of 1"


def test_an_adapter_that_pauses_a_budget_it_does_not_declare_is_refused_at_start() -> None:
    class Broken(ErrbotBackend):
        paused_by_rate_limit = "bot-wide"

    with pytest.raises(SettingsError, match="pauses 'bot-wide' on a 429 but declares no such"):
        plugin.budget_limits(Broken(_Mode("xmpp")), {})


def test_plugins_cfg_lists_every_adapters_budgets_with_their_defaults() -> None:
    from iwant_matrix.backend import IWantMatrixBackend

    cfg = (Path(__file__).resolve().parents[2] / "plugins.cfg").read_text(encoding="utf-8")
    pacing = cfg.split("[pacing]", 1)[1]
    listed = dict(
        line[2:].split("(", 1)[0].strip().split(" = ", 1)
        for line in pacing.splitlines()
        if line.startswith("# ") and " = " in line
    )
    declared = {
        f"{backend.platform}.{budget.name}": budget.limit
        for backend in (IWantSlackBackend, IWantTelegramBackend, IWantMatrixBackend)
        for budget in backend.budgets
    }
    assert listed == declared
