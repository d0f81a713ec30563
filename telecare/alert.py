"""The `Alert` type: one occurrence of a condition at one home (contract section 5).

An alert is immutable; a change of status is a new `Alert` value with the same `id`. Ids are
derived from what the occurrence is (home, rule, the condition's key and the event time it
was met), so the live service and a backtest over the same readings give the same ids, and a
restart that re-derives an occurrence cannot give it a second id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from telecare.reading import format_ts, parse_ts

Severity = Literal["info", "low", "medium", "high", "critical"]
Status = Literal["firing", "resolved"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)  # type: ignore[arg-type,unused-ignore]


def alert_id(home: str, rule: str, key: str, raised_at: datetime) -> str:
    stamp = format_ts(raised_at).replace(":", "").replace("-", "")
    parts = [home, rule, key, stamp] if key else [home, rule, stamp]
    return ":".join(parts)


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    home: str
    rule: str
    severity: Severity
    raised_at: datetime
    status: Status
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    resolved_at: datetime | None = None
    resolution: str | None = None  # plain words on how it ended; `message` keeps what it was

    def resolve(self, at: datetime, resolution: str) -> Alert:
        return replace(self, status="resolved", resolved_at=at, resolution=resolution)

    def to_json_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": self.id,
            "home": self.home,
            "rule": self.rule,
            "severity": self.severity,
            "raised_at": format_ts(self.raised_at),
            "status": self.status,
            "message": self.message,
            "evidence": self.evidence,
        }
        if self.resolved_at is not None:
            obj["resolved_at"] = format_ts(self.resolved_at)
        if self.resolution is not None:
            obj["resolution"] = self.resolution
        return obj

    def to_json(self) -> str:
        return json.dumps(self.to_json_obj(), sort_keys=False, separators=(", ", ": "))

    @classmethod
    def from_json_obj(cls, obj: dict[str, Any]) -> Alert:
        return cls(
            id=obj["id"],
            home=obj["home"],
            rule=obj["rule"],
            severity=obj["severity"],
            raised_at=parse_ts(obj["raised_at"]),
            status=obj["status"],
            message=obj["message"],
            evidence=obj.get("evidence", {}),
            resolved_at=parse_ts(obj["resolved_at"]) if obj.get("resolved_at") else None,
            resolution=obj.get("resolution"),
        )
