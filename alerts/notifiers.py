"""Notifiers: one small interface, each saying whether a failure is worth retrying.

A notifier sends notices (an alert change, a reminder, an acknowledgement) to one contact
over one channel and either returns, or raises `DeliveryError` with `retryable` set as the
channel knows best (a server error or a dropped connection may pass; a refused address will
not). Channels that people read (e-mail, Apprise, MQTT to a hub) take several notices for one
home at once and send them as one message; the webhook sends each alert's JSON on its own
(contract section 6).
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import urlsplit

import requests

from telecare.alert import Alert
from telecare.clock import Clock, wall_clock
from telecare.config import Contact

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class Notice:
    """One thing to tell one person: `kind` is alert (first notice or an escalation),
    reminder, resolved or acknowledged (`by` whom)."""

    alert: Alert
    kind: str = "alert"
    round: str = "0"
    by: str | None = None
    secret: str | None = field(default=None, repr=False)  # the contact's webhook signing key
    # A signed, expiring link that acknowledges this alert as this person (telecare.links),
    # when the console's address is known.
    ack_url: str | None = None

    def idempotency_key(self) -> str:
        base = f"{self.alert.id}/{self.alert.status}"
        return base if self.round in ("0", "resolved") else f"{base}/{self.round}"

    def headline(self) -> str:
        a = self.alert
        what = a.rule.replace("_", " ")
        if self.kind == "resolved":
            return f"All clear at home {a.home}: {what}"
        if self.kind == "acknowledged":
            return f"{self.by} is dealing with the {what} alert at home {a.home}"
        urgency = {"critical": "URGENT", "high": "Please act", "medium": "Please check",
                   "low": "For information", "info": "For information"}[a.severity]
        again = " (reminder: nobody has said they are dealing with it yet)" \
            if self.kind == "reminder" else ""
        return f"{urgency}: {what} at home {a.home}{again}"

    def text(self) -> str:
        a = self.alert
        if self.kind == "acknowledged":
            return f"{self.by} has taken this on. You do not need to act.\n\n{a.message}"
        if self.kind == "resolved":
            return f"{a.resolution or 'The condition has cleared.'}\n\nIt was: {a.message}"
        how = f":\n{self.ack_url}" if self.ack_url else "."
        return (f"{a.message}\n\nSeverity: {a.severity}. Alert {a.id}.\nWhen you are "
                f"dealing with it, acknowledge this alert, so the next person is not called"
                f"{how}")


def group_text(notices: list[Notice]) -> tuple[str, str]:
    """Subject and body for several notices about one home, most urgent first."""
    first = notices[0]
    if len(notices) == 1:
        return first.headline(), first.text()
    subject = f"{first.headline()} (and {len(notices) - 1} more for this home)"
    body = "\n\n----\n\n".join(f"{n.headline()}\n\n{n.text()}" for n in notices)
    return subject, body


class Notifier(Protocol):
    channel: str
    groups: bool  # takes several notices for one home as one message

    def target(self, contact: Contact) -> list[str]:
        """Where this channel reaches the contact (none: the contact has no such channel)."""

    def send(self, notices: list[Notice], target: str) -> None: ...


def sign_webhook(secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one request."""
    from standardwebhooks.webhooks import Webhook

    at = at.astimezone(UTC)  # the library reads the time as UTC whatever its zone
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, at, body)}


class WebhookNotifier:
    """HTTP POST of the alert JSON (contract section 6), one alert per request. The
    `Idempotency-Key` header lets a receiver drop the repeat that at-least-once delivery can
    cause after a crash; `X-Telecare-Notice` says whether this is the alert, a reminder, an
    acknowledgement or the all-clear.

    With the contact's `webhook_secret`, each request is signed as Standard Webhooks says
    (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<HMAC-SHA256>` of
    "id.timestamp.body"), through the `standardwebhooks` library, so a receiver can tell a
    real alert from a forged one with the same library in any language. The id is the
    idempotency key: a repeat after a crash is signed with the same id."""

    channel = "webhook"
    groups = False

    def __init__(self, timeout_s: float = 5.0,
                 clock: Clock = wall_clock) -> None:
        self.timeout_s = timeout_s
        self.clock = clock
        self._local = threading.local()  # a session per delivery thread

    def target(self, contact: Contact) -> list[str]:
        return [contact.webhook] if contact.webhook else []

    def send(self, notices: list[Notice], target: str) -> None:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        for notice in notices:
            headers = {"Content-Type": "application/json",
                       "Idempotency-Key": notice.idempotency_key(),
                       "X-Telecare-Notice": notice.kind}
            if notice.by:
                headers["X-Telecare-Acknowledged-By"] = notice.by
            if notice.ack_url:  # a header: the body stays the contract's alert object
                headers["X-Telecare-Ack-URL"] = notice.ack_url
            body = notice.alert.to_json()
            if notice.secret:
                headers.update(sign_webhook(notice.secret, notice.idempotency_key(), body,
                                            self.clock()))
            try:
                response = session.post(target, data=body.encode("utf-8"),
                                        headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                raise DeliveryError(f"webhook unreachable: {exc.__class__.__name__}",
                                    True) from None
            code = response.status_code
            if not 200 <= code < 300:
                retryable = code in (408, 425, 429) or code >= 500
                raise DeliveryError(f"webhook answered HTTP {code}", retryable)


class EmailNotifier:
    """E-mail over SMTP, plain words in the subject and body. The server is
    `TELECARE_SMTP_URL` (smtp://host:port, STARTTLS when the server offers it, or smtps://),
    with the login in TELECARE_SMTP_USERNAME / TELECARE_SMTP_PASSWORD."""

    channel = "email"
    groups = True

    def __init__(self, url: str | None = None, sender: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.url = url or os.environ.get("TELECARE_SMTP_URL", "smtp://127.0.0.1:25")
        self.sender = sender or os.environ.get("TELECARE_SMTP_FROM", "telecare@localhost")
        self.timeout_s = timeout_s

    def target(self, contact: Contact) -> list[str]:
        return [contact.email] if contact.email else []

    def send(self, notices: list[Notice], target: str) -> None:
        subject, body = group_text(notices)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, target, subject
        msg["X-Telecare-Alerts"] = ", ".join(n.alert.id for n in notices)
        msg.set_content(body)
        parts = urlsplit(self.url)
        host, tls = parts.hostname or "127.0.0.1", parts.scheme == "smtps"
        port = parts.port or (465 if tls else 25)
        try:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=self.timeout_s,
                                                  context=ssl.create_default_context()) \
                if tls else smtplib.SMTP(host, port, timeout=self.timeout_s)
            with smtp:
                if not tls and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                user = os.environ.get("TELECARE_SMTP_USERNAME")
                if user:
                    smtp.login(user, os.environ.get("TELECARE_SMTP_PASSWORD", ""))
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("mail server refused the address", False) from None
        except smtplib.SMTPAuthenticationError:
            raise DeliveryError("mail server refused the login", False) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"mail server answered {exc.smtp_code}",
                                exc.smtp_code < 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"mail server unreachable: {exc.__class__.__name__}",
                                True) from None


class AppriseNotifier:
    """The services Apprise reaches (SMS gateways, push, Telegram, Signal, Matrix, ...), each
    named by an Apprise URL in the contact's `apprise` list. Apprise says only whether a
    notification went; a failure is taken as worth retrying."""

    channel = "apprise"
    groups = True

    def target(self, contact: Contact) -> list[str]:
        return list(contact.apprise)

    def send(self, notices: list[Notice], target: str) -> None:
        import apprise  # imported here: it loads many plugins, which the other paths skip

        sender = apprise.Apprise()
        if not sender.add(target):
            raise DeliveryError("not a URL Apprise understands", False)
        subject, body = group_text(notices)
        if not sender.notify(title=subject, body=body):
            raise DeliveryError("the Apprise service did not take the notification", True)


class MqttNotifier:
    """Publishes to a home hub's or a responder console's topic (QoS 1, retained off): the
    alert JSON of each notice with `notice` and `by` added. Uses the pipeline's broker.

    Over MQTT v5 (the default; 3.1.1 only for the embedded broker, which has no v5) the
    broker's acknowledgement carries a reason: a publish its ACL refuses is a permanent
    failure, reported, never recorded as sent. (MQTT 3.1.1 acknowledges a refused publish
    like any other, which is why v5 is used wherever the broker speaks it.)"""

    channel = "mqtt"
    groups = False

    def __init__(self, broker_url: str | None = None, timeout_s: float = 5.0,
                 protocol: str = "5") -> None:
        self.broker_url = broker_url
        self.timeout_s = timeout_s
        self.protocol = protocol
        self._client: object | None = None
        self._lock = threading.Lock()
        self._acks: dict[int, object] = {}  # mid -> the broker's reason code

    def target(self, contact: Contact) -> list[str]:
        return [contact.mqtt] if contact.mqtt else []

    def _connect(self) -> object:
        from telecare.mqtt import BrokerUrl, make_client

        if self._client is None:
            assert self.broker_url
            url = BrokerUrl.parse(self.broker_url)
            client = make_client(url, f"telecare-notify-{os.getpid()}",
                                 protocol="5" if self.protocol == "5" else "3.1.1")
            client.on_publish = self._on_publish
            client.connect(url.host, url.port)
            client.loop_start()
            self._client = client
        return self._client

    def send(self, notices: list[Notice], target: str) -> None:
        if not self.broker_url:
            # Said, not skipped: the contact's plan names a topic nobody can publish to.
            raise DeliveryError("no MQTT broker configured for notices (--mqtt)", False)
        with self._lock:
            try:
                client = self._connect()
                for notice in notices:
                    body = {**notice.alert.to_json_obj(), "notice": notice.kind,
                            "by": notice.by}
                    info = client.publish(target, json.dumps(body), qos=1)  # type: ignore[attr-defined]
                    info.wait_for_publish(self.timeout_s)
                    if not info.is_published():
                        raise DeliveryError("broker did not confirm the publish", True)
                    reason = self._acks.pop(info.mid, None)
                    if reason is not None and getattr(reason, "is_failure", False):
                        raise DeliveryError(f"broker refused the notice: {reason}", False)
            except DeliveryError:
                raise
            except (OSError, RuntimeError, ValueError) as exc:
                self._client = None
                raise DeliveryError(f"broker unreachable: {exc.__class__.__name__}",
                                    True) from None


    def _on_publish(self, client: object, userdata: object, mid: int, reason: object,
                    properties: object) -> None:
        self._acks[mid] = reason


class LogNotifier:
    """A log line for every alert change: what, where, how severe; never the health detail."""

    channel = "log"
    groups = False

    def target(self, contact: Contact) -> list[str]:
        return []

    def send(self, notices: list[Notice], target: str) -> None:
        for n in notices:
            log.info("ALERT %s %s home=%s rule=%s severity=%s", n.alert.status.upper(),
                     n.alert.id, n.alert.home, n.alert.rule, n.alert.severity)


def default_notifiers(broker_url: str | None = None, protocol: str = "5") -> list[Notifier]:
    return [WebhookNotifier(), EmailNotifier(), AppriseNotifier(),
            MqttNotifier(broker_url, protocol=protocol)]


__all__ = ["AppriseNotifier", "DeliveryError", "EmailNotifier", "LogNotifier", "MqttNotifier",
           "Notice", "Notifier", "WebhookNotifier", "default_notifiers", "group_text"]
