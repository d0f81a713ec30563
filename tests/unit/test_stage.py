"""A stage's pass under failure: noted, undone, waited out; a passing condition never fatal."""

from __future__ import annotations

import sqlite3
import threading

from telecare.stage import StageStatus


def test_a_failed_pass_is_undone_noted_and_a_good_one_clears_it() -> None:
    status = StageStatus("detect")
    stop = threading.Event()
    stop.set()  # no real waiting in a unit test
    undone: list[int] = []

    def full() -> int:
        raise sqlite3.OperationalError("database or disk is full")

    assert status.attempt(stop, "detection step", full, lambda: undone.append(1)) is None
    assert undone == [1]
    report = status.report()
    assert report["ok"] is False
    assert report["error"] == "OperationalError: database or disk is full"
    for _ in range(20):  # a full disk is waited out for ever: never fatal
        status.attempt(stop, "detection step", full)
    assert status.fatal is None
    assert status.attempt(stop, "detection step", lambda: 7) == 7
    assert status.report() == {"alive": True, "ok": True}


def test_a_bug_failing_ten_times_running_makes_the_stage_fatal() -> None:
    status = StageStatus("alerts")
    stop = threading.Event()
    stop.set()

    def bug() -> None:
        raise KeyError("x")

    for _ in range(9):
        status.attempt(stop, "routing alerts", bug)
    assert status.fatal is None
    status.attempt(stop, "routing alerts", bug)
    assert status.fatal == "alerts: KeyError (10 times running)"
    status.last("routing alerts", bug)  # a last pass never raises


def test_a_last_pass_that_works_clears_the_error_of_a_pass_before_it() -> None:
    status = StageStatus("detect")
    stop = threading.Event()
    stop.set()
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError  # a server away for a moment, just before the stop

    status.attempt(stop, "detection step", flaky)
    assert status.error == "TimeoutError"
    status.last("detection", flaky)  # the work is done after all: nothing is left
    assert status.error is None and status.report()["ok"]
    status.last("detection", lambda: (_ for _ in ()).throw(KeyError("x")))
    assert status.error == "KeyError"  # one that fails is still told
