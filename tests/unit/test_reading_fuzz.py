"""Fuzzing the one place input is judged (Hypothesis): whatever bytes arrive on whatever
topic, the parser either gives a valid Reading or refuses with a known code; it never raises
anything else, never accepts a value outside its kind's bounds, never a time from the future."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from telecare.reading import (
    FUTURE_SLACK,
    KIND_BOUNDS,
    KINDS,
    BadReading,
    Reading,
    parse_jsonl_line,
    parse_payload,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CODES = {"bad_topic", "bad_home", "bad_device", "unknown_kind", "too_large", "bad_utf8",
         "bad_json", "not_object", "missing_ts", "missing_value", "bad_ts", "bad_value",
         "bad_seq", "bad_battery", "future_ts"}

segment = st.one_of(st.sampled_from(["h001", "kitchen-pir", "motion", "", "+", "#", "é"]),
                    st.text(max_size=70))
topics = st.one_of(
    st.builds(lambda h, d, k: f"telecare/v1/{h}/{d}/{k}", segment, segment,
              st.one_of(st.sampled_from(sorted(KINDS)), segment)),
    st.text(max_size=200))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                              max_size=4),
    max_leaves=12)
near_payloads = st.fixed_dictionaries(
    {"ts": st.one_of(st.floats(), st.integers(), st.text(max_size=40),
                     st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())),
     "value": json_values},
    optional={"seq": json_values, "battery": json_values, "extra": json_values})


def _judge(topic: str, payload: bytes) -> Reading | None:
    try:
        reading = parse_payload(topic, payload, NOW)
    except BadReading as bad:
        assert bad.code in CODES, bad.code
        assert bad.detail
        return None
    low, high = KIND_BOUNDS[reading.kind]
    assert math.isfinite(reading.value) or reading.kind == "heartbeat"
    assert low <= reading.value <= high
    assert reading.ts <= NOW + FUTURE_SLACK
    assert reading.seq is None or reading.seq >= 0
    return reading


@settings(max_examples=800, deadline=None)
@given(topics, st.binary(max_size=600))
def test_any_bytes_on_any_topic_are_a_reading_or_a_known_refusal(topic: str,
                                                                  payload: bytes) -> None:
    _judge(topic, payload)


@settings(max_examples=800, deadline=None)
@given(st.sampled_from(sorted(KINDS)), near_payloads)
def test_payloads_that_look_right_are_judged_without_surprises(kind: str,
                                                               obj: dict[str, object]) -> None:
    try:
        raw = json.dumps(obj, allow_nan=True).encode()
    except (TypeError, ValueError):
        return
    reading = _judge(f"telecare/v1/h001/dev-1/{kind}", raw)
    if reading is not None:  # what is accepted survives the JSON Lines round trip
        assert parse_jsonl_line(reading.to_jsonl()) == reading


@settings(max_examples=300, deadline=None)
@given(st.timedeltas(min_value=timedelta(days=-3000), max_value=timedelta(days=3000)))
def test_the_future_is_refused_exactly_past_the_slack(offset: timedelta) -> None:
    ts = NOW + offset
    payload = json.dumps({"ts": ts.isoformat(), "value": 1}).encode()
    try:
        parse_payload("telecare/v1/h001/pir/motion", payload, NOW)
        accepted = True
    except BadReading as bad:
        accepted = False
        assert bad.code in ("future_ts", "bad_ts")
    if datetime(2000, 1, 1, tzinfo=UTC) <= ts < datetime(2100, 1, 1, tzinfo=UTC):
        assert accepted == (offset <= FUTURE_SLACK)
