"""Notifiers: one small interface, each saying whether a failure is worth retrying.

A notifier sends one alert change to one contact over one channel and either returns, or
raises `DeliveryError` with `retryable` set as the channel knows best (a server error or a
dropped connection may pass; a refused address will not).
"""

from __future__ import annotations

import logging
from typing import Protocol

import requests

from telecare.alert import Alert
from telecare.config import Contact

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Notifier(Protocol):
    channel: str

    def target(self, contact: Contact) -> str | None:
        """Where this channel reaches the contact, or None if the contact has no such channel."""

    def send(self, alert: Alert, target: str) -> None: ...


class WebhookNotifier:
    """HTTP POST of the alert JSON (contract section 6). The `Idempotency-Key` header lets a
    receiver drop the repeat that at-least-once delivery can cause after a crash."""

    channel = "webhook"

    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.session = requests.Session()

    def target(self, contact: Contact) -> str | None:
        return contact.webhook

    def send(self, alert: Alert, target: str) -> None:
        try:
            response = self.session.post(
                target,
                data=alert.to_json().encode("utf-8"),
                headers={"Content-Type": "application/json",
                         "Idempotency-Key": f"{alert.id}/{alert.status}"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise DeliveryError(f"webhook unreachable: {exc.__class__.__name__}", True) from None
        code = response.status_code
        if 200 <= code < 300:
            return
        retryable = code in (408, 425, 429) or code >= 500
        raise DeliveryError(f"webhook answered HTTP {code}", retryable)


class LogNotifier:
    """A log line for every alert change: what, where, how severe; never the health detail."""

    channel = "log"

    def target(self, contact: Contact) -> str | None:
        return None

    def send(self, alert: Alert, target: str) -> None:
        log.info("ALERT %s %s home=%s rule=%s severity=%s", alert.status.upper(), alert.id,
                    alert.home, alert.rule, alert.severity)
