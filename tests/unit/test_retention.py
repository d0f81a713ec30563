"""Retention: old readings go once every reader has passed them; dead letters are capped but
stay counted; `telecare status` counts everything ever set aside."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from detect.checkpoint import Checkpoint
from ingest.store import DeadLetter, ReadingStore
from telecare.app.cli import main
from telecare.app.retention import prune
from telecare.db import Transaction, connect
from tests.builders import reading, write_home

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _fill(data: Path) -> ReadingStore:
    store = ReadingStore(connect(data))
    for days_ago in (120, 100, 95, 10):  # arrival times; 50 readings each
        at = NOW - timedelta(days=days_ago)
        store.add([reading("pir", "motion", 1, at + timedelta(seconds=i)) for i in range(50)],
                  at)
    return store


def _detected_upto(store: ReadingStore, rowid: int) -> None:
    checkpoint = Checkpoint(store.conn)
    with Transaction(store.conn) as c:
        checkpoint.save_in(c, rowid, None, {})


def test_readings_older_than_the_retention_go_once_detection_has_passed_them(
        tmp_path: Path) -> None:
    store = _fill(tmp_path)
    assert prune(store.conn, now=NOW).readings == 0  # detection has read nothing yet
    _detected_upto(store, 120)  # through the first 100, and 20 of the 95-day-old ones
    done = prune(store.conn, now=NOW)
    assert (done.readings, done.held_back_by) == (120, "detection")
    assert store.count() == 80
    _detected_upto(store, 200)
    assert prune(store.conn, now=NOW).readings == 30  # the 10-day-old ones stay
    assert store.count() == 50
    assert prune(store.conn, retention=timedelta(days=5), now=NOW).readings == 50


def test_dead_letters_are_capped_and_every_one_stays_counted(tmp_path: Path) -> None:
    store = ReadingStore(connect(tmp_path))
    dead = [DeadLetter(NOW, "telecare/v1/h/d/motion", b"x", 1, "bad_json", "not JSON")
            for _ in range(30)]
    store.add([], NOW, dead, overflow=[("h", "bad_json")] * 5)
    _detected_upto(store, 0)
    assert prune(store.conn, keep_dead_letters=10, now=NOW).dead_letters == 20
    assert store.dead_letter_count() == 10
    assert store.set_aside() == {"kept": 10, "counted_in_a_flood": 5, "pruned": 20,
                                 "total": 35}


def test_status_counts_all_that_was_set_aside_and_prune_says_what_it_did(
        tmp_path: Path) -> None:
    config = write_home(tmp_path / "config", "h001")
    data = tmp_path / "data"
    store = _fill(data)
    store.add([], NOW, [DeadLetter(NOW, "t", b"x", 1, "bad_json", "not JSON")] * 3,
              overflow=[("h001", "bad_json")] * 7)
    _detected_upto(store, 200)
    runner = CliRunner()
    out = runner.invoke(main, ["prune", "--config", str(config), "--data", str(data),
                               "--days", "30", "--keep-dead-letters", "1"])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == ("pruned 150 reading(s) that arrived over 30 days ago and 2 "
                                  "dead letter(s)")
    out = runner.invoke(main, ["status", "--config", str(config), "--data", str(data)])
    status = json.loads(out.output)
    assert (status["readings"], status["dead_letters"]) == (50, 10)
