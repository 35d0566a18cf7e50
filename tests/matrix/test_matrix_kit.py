"""The adapter kit (``iwant_platform.kit``) on Matrix: a real errbot process with the iwant
plugin on the IWantMatrix backend, against a real Synapse, people on encrypting clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from iwant_platform.kit import REQUIRED, SCENARIOS, run_kit
from matrix_kit_driver import MatrixKitDriver
from matrix_people import Loop
from synapse_harness import Synapse


@pytest.fixture
def matrix(synapse: Synapse, loop: Loop, tmp_path: Path) -> Iterator[MatrixKitDriver]:
    driver = MatrixKitDriver(synapse, loop, tmp_path)
    try:
        yield driver
    finally:
        driver.close()


def test_matrix_passes_the_adapter_kit(matrix: MatrixKitDriver) -> None:
    report = run_kit(matrix)
    print(report.text())
    log = f"\n--- errbot's log, its end ---\n{matrix.log_tail()}"
    assert report.ok, report.text() + log
    assert set(report.covered()) >= REQUIRED, report.text()
    # Synapse cannot be made to hand a running bot one event twice: that one alone is left.
    missing = {s.__name__ for s in SCENARIOS} - set(report.covered())
    assert missing == {"an_event_delivered_twice_is_answered_once"}, report.text() + log
