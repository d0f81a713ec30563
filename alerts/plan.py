"""Who in the resident's circle is told of an alert, and when: pure functions of the home's
plan, the alert and the time, so the service can re-derive them after any restart.

- A contact hears of alerts at or above their `min_severity`. Device faults (audience
  "technical") go only to technical contacts, and nothing else goes to them.
- Without an escalation plan, everyone who wants the alert is told at once (contract 4).
- With one, alerts at or above its `escalate_from` severity go to the contacts in the order
  the plan lists them, one more each `ack_within` until someone acknowledges, with
  reminders; a critical alert also goes to every professional at once. Alerts below it are
  told to everyone who wants them, once.
- Outside a contact's hours (in their own time zone) an alert below critical waits for the
  start of their hours; a critical alert is never held back.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from telecare.alert import Alert, severity_rank
from telecare.config import Contact, HomeConfig


def is_technical(alert: Alert) -> bool:
    return alert.evidence.get("audience") == "technical"


def wants(contact: Contact, alert: Alert) -> bool:
    if is_technical(alert) != (contact.role == "technical"):
        return False
    return severity_rank(alert.severity) >= severity_rank(contact.min_severity)


def chain(home: HomeConfig, alert: Alert) -> list[Contact]:
    """The contacts to ask, in order."""
    return [c for c in home.contacts if wants(c, alert)]


def escalates(home: HomeConfig, alert: Alert) -> bool:
    """Is this alert taken down the chain, with reminders? Only with a plan, and only at or
    above the plan's `escalate_from` severity: a low device notice is told, not chased."""
    esc = home.escalation
    return esc is not None and severity_rank(alert.severity) >= severity_rank(
        esc.escalate_from)


def told_at_once(home: HomeConfig, alert: Alert) -> list[Contact]:
    people = chain(home, alert)
    if not escalates(home, alert):
        return people
    first = people[:1]
    if alert.severity == "critical":
        first += [c for c in people[1:] if c.role == "professional"]
    return first


def _within(t: time, start: time, end: time) -> bool:
    return start <= t < end if start <= end else (t >= start or t < end)


def reachable_from(contact: Contact, home: HomeConfig, alert: Alert, now: datetime) -> datetime:
    """When the contact may be told: now, or the next start of their hours."""
    if contact.hours is None or alert.severity == "critical":
        return now
    tz = ZoneInfo(contact.timezone) if contact.timezone else home.tz
    local = now.astimezone(tz)
    start, end = contact.hours.start, contact.hours.end
    if _within(local.time(), start, end):
        return now
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    # Built from the local date and clock time, so a DST change in between is honoured.
    return datetime.combine(day, start, tzinfo=tz).astimezone(now.tzinfo)
