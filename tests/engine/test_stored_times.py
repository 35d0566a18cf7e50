"""Times through the SQL storage: aware UTC in and out, stored as the dialect stores them.

``UTCDateTime`` converts each way with a memo (``schema._Memo``) instead of SQLAlchemy's
own processors; these tests hold it to what those processors do."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, insert, select, text

from iwant_engine.storage.schema import UTCDateTime, _Memo
from iwant_engine.storage.sql_rows import RESULTS

from ..support import ALICE, make_engine

PRAGUE = ZoneInfo("Europe/Prague")


def test_a_wish_in_another_zone_is_stored_and_read_as_the_same_instant_in_utc(
    sql_database_url, clock
):
    engine = make_engine(sql_database_url, clock)
    try:
        engine.set_timezone(ALICE, "Europe/Prague")
        engine.submit(ALICE, "coffee 11:00-12:00")  # 10:00-11:00 UTC on 1 December
        (stored,) = engine.open_requests(ALICE)
        assert stored.earliest == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
        assert stored.earliest.tzinfo is UTC and stored.latest.tzinfo is UTC
        assert stored.earliest.astimezone(PRAGUE).hour == 11
    finally:
        engine.close()


def test_sqlite_stores_the_text_sqlalchemy_itself_writes_and_reads_it_back(tmp_path, clock):
    engine = make_engine(f"sqlite:///{tmp_path / 'iwant.db'}", clock)
    sa_engine = engine.storage.engine
    try:
        engine.submit(ALICE, "coffee 9:30-10:30")
        with sa_engine.connect() as conn:
            stored = conn.execute(text("SELECT earliest, latest FROM requests")).one()
        assert tuple(stored) == ("2026-12-01 09:30:00.000000", "2026-12-01 10:30:00.000000")
        # A row as SQLAlchemy's own DateTime writes it (rows stored before the memo) reads
        # back as the same aware instant, with or without microseconds.
        own = DateTime().dialect_impl(sa_engine.dialect).bind_processor(sa_engine.dialect)
        moment = datetime(2026, 12, 1, 9, 30, 15, 250)
        assert own(moment) == "2026-12-01 09:30:15.000250"
        with sa_engine.begin() as conn:
            for due in (own(moment), "2026-12-01 09:30:15"):
                conn.execute(
                    insert(RESULTS).values(
                        pool="p",
                        activity="a",
                        status="PENDING",
                        max_size=2,
                        size=1,
                        updated_at=datetime(2026, 12, 1, tzinfo=UTC),
                    )  # fmt: skip
                )
                conn.execute(text("UPDATE results SET due_at = :d WHERE id = "
                                  "(SELECT max(id) FROM results)"), {"d": due})  # fmt: skip
            mine = select(RESULTS.c.due_at).where(RESULTS.c.pool == "p").order_by(RESULTS.c.id)
            read = conn.execute(mine).scalars().all()
        assert read == [moment.replace(tzinfo=UTC), moment.replace(microsecond=0, tzinfo=UTC)]
    finally:
        engine.close()


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_the_conversions_agree_with_sqlalchemys_own_and_refuse_naive_times(dialect_name):
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = (sqlite if dialect_name == "sqlite" else postgresql).dialect()
    kind = UTCDateTime().dialect_impl(dialect)
    bind, read = kind.bind_processor(dialect), kind.result_processor(dialect, None)
    plain = DateTime().dialect_impl(dialect)
    plain_bind = plain.bind_processor(dialect) or (lambda v: v)
    plain_read = plain.result_processor(dialect, None) or (lambda v: v)
    summer = timezone(timedelta(hours=2))
    for moment in (
        datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 59, 59, 999999, tzinfo=summer),
        datetime(2026, 10, 25, 2, 30, tzinfo=PRAGUE),
    ):
        for _ in range(2):  # converted, then remembered
            stored = bind(moment)
            assert stored == plain_bind(moment.astimezone(UTC).replace(tzinfo=None))
            back = read(stored)
            assert back == moment.astimezone(UTC) and back.tzinfo is UTC
            assert read(stored) == plain_read(stored).replace(tzinfo=UTC)
    assert bind(None) is None and read(None) is None
    # 02:30 on 25 October happens twice in Prague; the second (fold 1) is an hour later in
    # UTC, though it compares equal to the first within its zone.
    twice = datetime(2026, 10, 25, 2, 30, tzinfo=PRAGUE)
    assert read(bind(twice)) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert read(bind(twice.replace(fold=1))) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    same_instant = datetime(2026, 12, 1, 10, 0, tzinfo=summer)  # 08:00 UTC
    assert read(bind(same_instant)) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    for _ in range(2):
        with pytest.raises(ValueError, match="naive datetime"):
            bind(datetime(2026, 12, 1, 9, 0))


def test_the_memo_stays_bounded():
    calls: list[int] = []
    memo = _Memo(lambda n: calls.append(n) or n * 2)
    for n in range(_Memo.SIZE * 2 + 10):
        assert memo[n] == n * 2
    assert len(memo) <= _Memo.SIZE
    assert memo[_Memo.SIZE * 2 + 9] == (_Memo.SIZE * 2 + 9) * 2  # kept: not converted again
    assert len(calls) == _Memo.SIZE * 2 + 10


def test_every_datetime_column_is_stored_as_utc():
    from iwant_engine.storage.schema import Base

    plain = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, DateTime)  # UTCDateTime decorates DateTime, is not one
    ]
    assert plain == [], f"datetime columns not stored as UTCDateTime: {plain}"
