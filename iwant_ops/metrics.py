"""The Prometheus metrics of one bot process, in a registry of its own (not the process-wide
default one, so two plugins or two tests in one process never share a count).

Counted as they happen: commands, submission latency, matches, deliveries, 429s, pacing,
the database found unreachable, standing wishes' days made. Read at scrape time from the
database (``outbox``, one indexed query): the outbox's depth and the age of its oldest
undelivered row, per platform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: (platform, undelivered rows, age of the oldest in seconds), or None: no database.
OutboxReading = Callable[[], Sequence[tuple[str, int, float]] | None]

#: Submission latency buckets, seconds: a wish usually takes milliseconds.
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Pacing waits, seconds: up to ``pacing.PROMPT`` (0.25) normally.
WAITS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class OutboxCollector(Collector):
    """The outbox as the database has it now, at each scrape."""

    def __init__(self, read: OutboxReading) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        readings = self.read()
        up = GaugeMetricFamily(
            "iwant_database_up", "1 when the database answered this scrape, else 0"
        )
        up.add_metric([], 0.0 if readings is None else 1.0)
        yield up
        if readings is None:
            return
        depth = GaugeMetricFamily(
            "iwant_outbox_depth", "Undelivered notifications (not given up)", labels=["platform"]
        )
        oldest = GaugeMetricFamily(
            "iwant_outbox_oldest_age_seconds",
            "Age of the oldest undelivered notification (0: none)",
            labels=["platform"],
        )
        for platform, rows, age in readings:
            depth.add_metric([platform], rows)
            oldest.add_metric([platform], age)
        yield depth
        yield oldest


class Metrics:
    """Every metric of a bot process; ``render()`` is the /metrics page."""

    def __init__(self, outbox: OutboxReading | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.commands = Counter(
            "iwant_commands", "Chat commands handled, by kind (the command word, or wish) and "
            "outcome (ok, refused, unavailable, error, rate_limited, too_long)",
            ["kind", "outcome"], registry=r,
        )  # fmt: skip
        self.submission = Histogram(
            "iwant_submission_seconds", "Time to handle a wish: read, store, match, commit",
            buckets=LATENCY, registry=r,
        )  # fmt: skip
        self.matches = Counter(
            "iwant_matches", "Wishes that met someone at once (formed or joined a group)",
            registry=r,
        )  # fmt: skip
        self.standing_made = Counter(
            "iwant_standing_days_made", "Days' wishes made from standing wishes", registry=r
        )
        self.calendar_refreshes = Counter(
            "iwant_calendar_refreshes", "Background reads of linked calendars, by result (ok, "
            "failed)", ["result"], registry=r,
        )  # fmt: skip
        self.deliveries = Counter(
            "iwant_deliveries", "Notifications handed to the platform, by platform and result "
            "(delivered, retry, undeliverable, deferred)", ["platform", "result"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "iwant_rate_limited", "429 answers from the platform", ["platform"], registry=r
        )
        self.rate_limit_pause = Counter(
            "iwant_rate_limit_pause_seconds", "Pauses the platform's 429s asked for, summed",
            ["platform"], registry=r,
        )  # fmt: skip
        self.pacing_waits = Histogram(
            "iwant_pacing_wait_seconds", "Waits for a send slot of the platform's budgets",
            buckets=WAITS, registry=r,
        )  # fmt: skip
        self.database_unavailable = Counter(
            "iwant_database_unavailable", "Times the database was found unreachable, by where "
            "(command, poller, delivery)", ["during"], registry=r,
        )  # fmt: skip
        if outbox is not None:
            r.register(OutboxCollector(outbox))

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
