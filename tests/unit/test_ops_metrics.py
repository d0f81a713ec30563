"""/metrics from the pipeline's snapshot: what the separate processes report reaches the
Prometheus text (a snapshot stands in for the pipeline here; the real pipeline's /metrics is
read by tests/e2e/test_priority_lane.py)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from telecare.app.ops import PipelineCollector


class Snap:
    def __init__(self, snap: dict[str, Any]) -> None:
        self.snap = snap

    def snapshot(self) -> dict[str, Any]:
        return self.snap


def metrics(snap: dict[str, Any]) -> str:
    registry = CollectorRegistry()
    registry.register(PipelineCollector(Snap(snap)))
    return generate_latest(registry).decode()


def test_the_urgent_judges_process_and_the_logs_passed_over_messages_are_counted() -> None:
    text = metrics({"stages": {"detect": {"ok": True}, "detect-urgent": {"ok": True}},
                    "urgent": {"raised": 4},
                    "detect": {"rule_errors": {}, "skipped_unknown": 0, "backlog": 0,
                               "log_undecodable": 3}})
    assert "telecare_priority_lane_alerts_total 4.0" in text
    assert "telecare_detect_log_undecodable_total 3.0" in text


def test_without_an_urgent_judge_in_this_process_no_priority_lane_count_is_made_up() -> None:
    text = metrics({"stages": {"alerts": {"ok": True}}})
    assert "telecare_priority_lane_alerts" not in text
