"""Judging payloads: every kind of bad input gets its own reason; good input round-trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from telecare.reading import BadReading, Reading, parse_jsonl_line, parse_payload

TOPIC = "telecare/v1/h001/kitchen-pir/motion"


def test_rfc3339_with_offset_and_z_and_unix_seconds_give_the_same_instant() -> None:
    a = parse_payload(TOPIC, b'{"ts": "2026-11-28T07:15:02+00:00", "value": 1}')
    b = parse_payload(TOPIC, b'{"ts": "2026-11-28T08:15:02+01:00", "value": 1}')
    c = parse_payload(TOPIC, b'{"ts": "2026-11-28T07:15:02Z", "value": true}')
    d = parse_payload(TOPIC, json.dumps({"ts": a.ts.timestamp(), "value": 1}).encode())
    assert a.ts == b.ts == c.ts == d.ts == datetime(2026, 11, 28, 7, 15, 2, tzinfo=UTC)
    assert (a.home, a.device, a.kind, a.value) == ("h001", "kitchen-pir", "motion", 1.0)


def test_optional_seq_and_battery_are_kept_and_unknown_fields_ignored() -> None:
    r = parse_payload("telecare/v1/h1/plug/power",
                      b'{"ts": 1764314102, "value": 2000.5, "seq": 7, "battery": 88, "x": [1]}')
    assert (r.value, r.seq, r.battery) == (2000.5, 7, 88.0)


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        (TOPIC, b"{not json", "bad_json"),
        (TOPIC, b'{"ts": 1764314102, "value": NaN}', "bad_json"),
        (TOPIC, b'{"ts": 1764314102, "value": Infinity}', "bad_json"),
        (TOPIC, b"[1, 2]", "not_object"),
        (TOPIC, b'{"value": 1}', "missing_ts"),
        (TOPIC, b'{"ts": 1764314102}', "missing_value"),
        (TOPIC, b'{"ts": "yesterday", "value": 1}', "bad_ts"),
        (TOPIC, b'{"ts": "2026-11-28T07:15:02", "value": 1}', "bad_ts"),  # no offset
        (TOPIC, b'{"ts": true, "value": 1}', "bad_ts"),
        (TOPIC, b'{"ts": 12, "value": 1}', "bad_ts"),  # 1970: a device with no clock
        (TOPIC, b'{"ts": 1764314102, "value": "1"}', "bad_value"),
        (TOPIC, b'{"ts": 1764314102, "value": 2}', "bad_value"),  # motion is 0 or 1
        ("telecare/v1/h1/t/temperature", b'{"ts": 1764314102, "value": 900}', "bad_value"),
        (TOPIC, b'{"ts": 1764314102, "value": 1, "seq": -1}', "bad_seq"),
        (TOPIC, b'{"ts": 1764314102, "value": 1, "seq": 1.5}', "bad_seq"),
        (TOPIC, b'{"ts": 1764314102, "value": 1, "battery": 101}', "bad_battery"),
        ("telecare/v1/h1/d/warp_drive", b'{"ts": 1764314102, "value": 1}', "unknown_kind"),
        ("telecare/v1/h 1/d/motion", b'{"ts": 1764314102, "value": 1}', "bad_home"),
        ("telecare/v1/h1/d\"x/motion", b'{"ts": 1764314102, "value": 1}', "bad_device"),
        (f"telecare/v1/{'h' * 65}/d/motion", b'{"ts": 1764314102, "value": 1}', "bad_home"),
        ("telecare/v1/h1/d/motion/extra", b'{"ts": 1764314102, "value": 1}', "bad_topic"),
        (TOPIC, b'{"ts": 1764314102, "value": 1, "pad": "' + b"x" * 5000 + b'"}', "too_large"),
        (TOPIC, b'{"ts": 1764314102, "value": 1, "n": "\xff"}', "bad_utf8"),
        (TOPIC, b"[" * 3000 + b"]" * 3000, "too_large"),
        (TOPIC, b"[" * 2000 + b"]" * 2000, "bad_json"),  # nesting deep enough to recurse
    ],
)
def test_bad_input_is_refused_with_its_reason(topic: str, payload: bytes, code: str) -> None:
    with pytest.raises(BadReading) as info:
        parse_payload(topic, payload)
    assert info.value.code == code
    assert info.value.detail  # a person can read why


def test_jsonl_form_round_trips_through_the_parser() -> None:
    r = Reading("h001", "bed-mat", "bed", 1.0, datetime(2026, 1, 5, 22, 1, 2, 345000, UTC), 3, 90)
    back = parse_jsonl_line(r.to_jsonl())
    assert back == r
    assert json.loads(r.to_jsonl())["ts"] == "2026-01-05T22:01:02.345Z"


def test_a_duplicate_needs_the_same_seq_and_ts_and_a_restarted_counter_is_new() -> None:
    t = datetime(2026, 1, 5, tzinfo=UTC)
    # The same seq and ts is a resend, whatever the value says (a gateway re-encoding it).
    assert Reading("h", "d", "button", 1, t, 5).dedupe_key() == \
        Reading("h", "d", "button", 1.0, t, 5).dedupe_key()
    # The same seq two days later: the pendant's counter restarted (a battery change).
    assert Reading("h", "d", "button", 1, t, 5).dedupe_key() != \
        Reading("h", "d", "button", 1, t + timedelta(days=2), 5).dedupe_key()
    assert Reading("h", "d", "motion", 1, t).dedupe_key() != \
        Reading("h", "d", "motion", 1, t.replace(second=9)).dedupe_key()


def test_a_reading_from_more_than_five_minutes_ahead_is_refused_as_future_ts() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    ahead = now + timedelta(minutes=4, seconds=59)
    ok = parse_payload(TOPIC, json.dumps({"ts": ahead.isoformat(), "value": 1}).encode(), now)
    assert ok.ts == ahead
    year = now + timedelta(days=365)
    with pytest.raises(BadReading) as info:
        parse_payload(TOPIC, json.dumps({"ts": year.isoformat(), "value": 1}).encode(), now)
    assert info.value.code == "future_ts"
    # Without the receiver's clock (a recording being replayed) the time is not judged.
    assert parse_payload(TOPIC, json.dumps({"ts": year.isoformat(), "value": 1}).encode()).ts \
        == year
