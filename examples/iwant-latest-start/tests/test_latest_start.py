from iwant_engine.testing import check_strategy


def test_latest_start_keeps_every_invariant():
    check_strategy("latest-start")


def test_latest_start_with_groups_keeps_every_invariant():
    check_strategy("latest-start", settings={"pairs_only": "no"})
