"""The SQL storage's hot statements: compiled once, run on the driver's cursor.

SQLAlchemy Core stays the source of every statement. ``Prepared`` compiles a Core statement
once for one dialect and keeps what ``Connection.execute`` would otherwise work out again
on each call (the cache key of the statement, an execution context, result metadata built
from ``cursor.description``): the SQL text, the order of its parameters, and the type
processors of its parameters and result columns, taken from the statement's own types
(``TypeEngine.dialect_impl(dialect)``), so the values stored and read are exactly those of
a ``Connection.execute``.

``Runner`` executes them on the DBAPI connection of a SQLAlchemy ``Connection`` (inside the
transaction that connection began). Each statement still fires that connection's
``before_cursor_execute`` listeners (with no execution context), so whatever counts or
logs statements through SQLAlchemy's events sees these too; an error of the driver goes
through SQLAlchemy's own handling (wrapped as ``sqlalchemy.exc.DBAPIError``, a lost
connection invalidated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


class Prepared:
    """One Core statement compiled for one dialect.

    ``params(values)`` turns a mapping of bind names to Python values into the driver's
    parameters (a tuple for positional drivers such as sqlite3, a dict otherwise), applying
    each bind's type processor; a bind that carries its own value (a ``LIMIT``) is filled in
    once here. ``rows(raw)`` applies the result columns' processors to the driver's rows.
    ``column_keys``: the columns an INSERT or UPDATE gets values for, as
    ``Connection.execute`` would compile it for parameters with these keys."""

    __slots__ = ("sql", "positional", "_binds", "_names", "_order", "_columns")

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        compiled = cast(
            SQLCompiler,
            statement.compile(
                dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None
            ),
        )
        if getattr(compiled, "escaped_bind_names", None):
            raise ValueError("bind names that need escaping are not supported")
        self.sql: str = compiled.string
        self.positional: bool = bool(dialect.positional)
        # Each bind once (a name may occur several times in a positional statement), as
        # (name, processor, whether its value is fixed, the fixed value).
        order: Sequence[str] = compiled.positiontup or () if self.positional else ()
        names = list(dict.fromkeys(order or compiled.bind_names.values()))
        plan: list[tuple[str, Processor | None, bool, Any]] = []
        for name in names:
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required or bind.callable is not None:
                plan.append((name, process, False, None))
            else:  # a value given when the statement was built (a LIMIT, a literal)
                value = bind.effective_value
                plan.append((name, None, True, process(value) if process else value))
        self._binds = tuple(plan)
        self._names = tuple(names)
        # Positional: where each parameter's value comes from, when not simply in order.
        self._order = tuple(names.index(n) for n in order) if len(order) > len(names) else None
        columns: Sequence[Any] = (
            getattr(statement, "selected_columns", None)
            or getattr(statement, "exported_columns", None)
            or ()
        )
        self._columns = tuple(
            (i, process)
            for i, column in enumerate(columns)
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
        )

    def params(self, values: Mapping[str, Any]) -> Any:
        out = [
            fixed if constant else (process(values[name]) if process else values[name])
            for name, process, constant, fixed in self._binds
        ]
        if not self.positional:
            return dict(zip(self._names, out, strict=True))
        if self._order is None:
            return tuple(out)
        return tuple([out[i] for i in self._order])

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        columns = self._columns
        if not columns:
            return list(raw)
        result: list[Sequence[Any]] = []
        for row in raw:
            values = list(row)
            for i, process in columns:
                values[i] = process(values[i])
            result.append(values)
        return result


class PreparedRows(Prepared):
    """One Core statement that writes ``count`` rows at once (a multi-row ``INSERT ...
    VALUES``, an ``UPDATE ... FROM`` a list of rows). Its bind for ``key`` of row ``i`` is
    named ``f"{key}_{i}"`` (a bind with a value of its own is filled in as by ``Prepared``);
    ``rows_params(rows)`` takes the rows as mappings of those keys."""

    __slots__ = ("count", "_sources")

    def __init__(self, statement: ClauseElement, dialect: Dialect, count: int) -> None:
        super().__init__(statement, dialect)
        self.count = count
        sources = []
        for name, _process, constant, _value in self._binds:
            if constant:
                continue
            key, _, index = name.rpartition("_")
            if not key or not index.isdigit() or int(index) >= count:
                raise ValueError(f"bind {name!r} names no row of {count}")
            sources.append((name, int(index), key))
        self._sources = tuple(sources)

    def rows_params(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        if len(rows) != self.count:
            raise ValueError(f"{len(rows)} rows for a statement of {self.count}")
        return self.params({name: rows[i][key] for name, i, key in self._sources})


class RowWrites:
    """A write of any number of rows in as few statements as it takes: one row by ``one``
    (a ``Prepared`` whose binds are the rows' keys), several by ``build(n)``, the Core
    statement for ``n`` rows (binds as ``PreparedRows`` names them), compiled once per
    count up to ``most``; more rows go ``most`` at a time. ``most`` times the binds of a
    row stays well under SQLite's smallest variable limit (999)."""

    __slots__ = ("one", "most", "_build", "_dialect", "_compiled")

    def __init__(
        self,
        one: Prepared,
        build: Callable[[int], ClauseElement],
        dialect: Dialect,
        most: int = 16,
    ) -> None:
        self.one, self.most = one, most
        self._build, self._dialect = build, dialect
        self._compiled: dict[int, PreparedRows] = {}

    def statement(self, count: int) -> PreparedRows:
        found = self._compiled.get(count)
        if found is None:
            if not 2 <= count <= self.most:
                raise ValueError(f"{count} rows: 2 to {self.most} in one statement")
            found = self._compiled[count] = PreparedRows(self._build(count), self._dialect, count)
        return found


class Runner:
    """Runs ``Prepared`` statements on the DBAPI connection of ``conn``, in its transaction."""

    __slots__ = ("conn", "cursor", "began", "_driver")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._driver: Any = conn.connection.driver_connection
        self.began = False  # this runner sent the transaction's BEGIN (see ``pipeline``)
        self.cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def _announce(self, sql: str, params: Any, many: bool) -> None:
        listeners = self.conn.dispatch.before_cursor_execute
        if listeners:  # false without any (iterating an empty collection costs more)
            for listen in listeners:
                listen(self.conn, self.cursor, sql, params, None, many)

    def _failed(self, err: BaseException, sql: str, params: Any) -> None:
        # SQLAlchemy's own handling: wrap as DBAPIError, invalidate a lost connection.
        self.conn._handle_dbapi_exception(err, sql, params, self.cursor, None)

    def execute(self, stmt: Prepared, values: Mapping[str, Any]) -> None:
        params = stmt.params(values)
        self._announce(stmt.sql, params, False)
        try:
            self.cursor.execute(stmt.sql, params)
        except Exception as err:
            self._failed(err, stmt.sql, params)

    def command(self, sql: str) -> None:
        """A statement without parameters (``BEGIN IMMEDIATE``)."""
        self._announce(sql, (), False)
        try:
            self.cursor.execute(sql)
        except Exception as err:
            self._failed(err, sql, ())

    def executemany(self, stmt: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        params = [stmt.params(values) for values in rows]
        self._announce(stmt.sql, params, True)
        try:
            self.cursor.executemany(stmt.sql, params)
        except Exception as err:
            self._failed(err, stmt.sql, params)

    def write(self, stmt: RowWrites, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``rows`` with ``stmt``: one statement for up to ``stmt.most`` rows, in
        their order."""
        most = stmt.most
        for first in range(0, len(rows), most):
            chunk = rows[first : first + most]
            if len(chunk) == 1:
                self.execute(stmt.one, chunk[0])
                continue
            self.execute_rows(stmt.statement(len(chunk)), chunk)

    def execute_rows(self, stmt: PreparedRows, rows: Sequence[Mapping[str, Any]]) -> None:
        """``stmt`` for as many ``rows`` as it writes (what it returns: ``fetch``)."""
        params = stmt.rows_params(rows)
        self._announce(stmt.sql, params, False)
        try:
            self.cursor.execute(stmt.sql, params)
        except Exception as err:
            self._failed(err, stmt.sql, params)

    def rows(self, stmt: Prepared, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Execute ``stmt`` and fetch all its rows, processed."""
        params = stmt.params(values)
        self._announce(stmt.sql, params, False)
        try:
            self.cursor.execute(stmt.sql, params)
            raw = self.cursor.fetchall()
        except Exception as err:
            self._failed(err, stmt.sql, params)
        return stmt.rows(raw)

    def fetch(self, stmt: Prepared) -> list[Sequence[Any]]:
        """The rows of ``stmt``, executed last (``execute``; in a pipeline, after it)."""
        try:
            raw = self.cursor.fetchall()
        except Exception as err:
            self._failed(err, stmt.sql, None)
        return stmt.rows(raw)

    def scalar(self, stmt: Prepared, values: Mapping[str, Any]) -> Any:
        """The first column of the single row ``stmt`` returns."""
        (row,) = self.rows(stmt, values)
        return row[0]

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """psycopg: the statements of the block are sent together and their results read in
        one round trip (the server still runs them one after the other, each statement on
        a snapshot taken when it starts). Other drivers: nothing changes.

        When no transaction is open yet, its ``BEGIN`` goes at the head of the same round
        trip; psycopg would otherwise send it by itself and wait for its answer first. For
        that the connection is in psycopg's autocommit mode until ``restore`` (so psycopg
        adds no BEGIN of its own); the transaction is still the one SQLAlchemy ends with
        COMMIT or ROLLBACK."""
        driver = self._driver
        pipeline = getattr(driver, "pipeline", None)
        if pipeline is None:
            yield
            return
        try:
            begin = not driver.autocommit and driver.info.transaction_status.name == "IDLE"
            if begin:
                driver.autocommit = True
                self.began = True
            with pipeline():
                if begin:
                    self.cursor.execute("BEGIN")
                yield
        except self.conn.dialect.loaded_dbapi.Error as err:
            self._failed(err, "(pipeline)", None)

    def restore(self) -> None:
        """After the transaction ended: psycopg begins transactions by itself again. A
        connection that cannot be put back is invalidated, never pooled in autocommit."""
        if not self.began:
            return
        self.began = False
        try:
            self._driver.autocommit = False
        except Exception:
            with suppress(Exception):
                self.conn.invalidate()
