"""A big Slack group's announcement posts twice in its channel (a short message, then the
members in its thread): its row spends two sends of the channel's and the workspace's
budgets, back to back, or three groups formed at once in one channel exceed Slack's
1 message a second there (issue 15; tests/rush/test_rush.py shows it end to end; what a
row spends is the adapter's, tests/platform/test_budgets.py)."""

from __future__ import annotations

import pytest

from iwant_engine.pacing import Limit, Pacer, Scope


class Book:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def pace(self, keys, step) -> None:  # noqa: ANN001
        self.at.update(step({k: self.at[k] for k in keys if k in self.at}))


def test_a_row_of_two_posts_reserves_both_back_to_back() -> None:
    now = [1000.0]
    pacer = Pacer(Book().pace, clock=lambda: now[0], sleep=lambda s: None)
    channel = Limit(1.0, 2)  # 1 a second, 2 back to back
    two = [Scope("slack:B:channel:C1", channel, sends=2)]
    assert pacer.reserve(two, within=10) == (1000.0, True)
    # Both posts used the burst: the next pair fits once both have drained (2 s).
    assert pacer.reserve(two, within=10) == (pytest.approx(1002.0), True)
    one = [Scope("slack:B:channel:C1", channel)]
    assert pacer.reserve(one, within=10) == (pytest.approx(1003.0), True)
