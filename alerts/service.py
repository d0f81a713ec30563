"""The alerts stage: from each alert change to a person who has taken it on.

Small steps composed in plain code, each durable in the embedded store, so a restart (even a
SIGKILL) resumes exactly where it was, with no notification twice and none missed:
1. route: each new alert event becomes notifications (one row per person, channel, target
   and round, unique), for the people the home's plan says to tell now (`alerts.plan`),
   committed with the stage's cursor; with an escalation plan the alert also gets an
   escalation row: who is next and when, when the next reminder is due.
2. escalate: due escalation steps tell the next person in the chain; due reminders tell
   everyone told so far again, on the plan's schedule whose last interval repeats. Each step
   is committed with the rows it creates, so it happens once.
3. deliver: each channel has its own worker, so a failing or slow channel never holds back
   another; a retryable failure is tried again with back-off, a permanent one (or one that
   keeps failing) is marked failed and reported. People's channels (e-mail, Apprise) get a
   home's due notices grouped into one message.
People act through `acknowledge` (stops the escalation and tells the others who is dealing
with it), `resolve_by_person` (closes it, with an outcome), `feedback` (useful / false
alarm, with a word of why) and the resident's own "I'm OK" (`resident_ok`), all recorded
beside the alert.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts import plan
from alerts.notifiers import DeliveryError, LogNotifier, Notice, Notifier, WebhookNotifier
from alerts.store import AlertStore
from telecare.alert import Alert, severity_rank
from telecare.alert import alert_id as make_alert_id
from telecare.clock import Clock, wall_clock
from telecare.config import Config, Contact, HomeConfig, read_secret
from telecare.db import Conn, PerThread, Transaction, data_dir_of
from telecare.links import ack_token, console_secret
from telecare.pgdb import Listener, notify, shared, xact_lock
from telecare.stage import StageStatus, Wake, describe

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL,
    home TEXT NOT NULL,
    status TEXT NOT NULL,           -- the alert's status this notice is about
    round TEXT NOT NULL,            -- 0, stepN, repeatN, resolved, ack:NAME
    kind TEXT NOT NULL,             -- alert, reminder, resolved, acknowledged
    by_whom TEXT,
    contact TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending, sent, failed, dropped
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    sent_at REAL,
    UNIQUE (alert_id, status, round, contact, channel, target)
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (state, channel, next_attempt);
CREATE TABLE IF NOT EXISTS escalations (
    alert_id TEXT PRIMARY KEY,
    home TEXT NOT NULL,
    state TEXT NOT NULL,            -- open, acknowledged, resolved
    started REAL NOT NULL,
    step INTEGER NOT NULL,          -- how many of the chain have been asked
    next_step_at REAL,
    repeats INTEGER NOT NULL DEFAULT 0,
    next_repeat_at REAL
);
-- "Give me N minutes": the chain and reminders wait until `until`, then resume by themselves
-- (state 'held' in escalations): a hold is never a forgotten acknowledgement.
CREATE TABLE IF NOT EXISTS holds (
    alert_id TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    at REAL NOT NULL,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts_meta (key TEXT PRIMARY KEY, value TEXT);
"""
MAX_ATTEMPTS = 12
CLAIM_S = 60.0  # a claimed notice's lease, renewed while its worker is still sending others
VERDICTS = ("useful", "false_alarm")
RESIDENT = "the resident"


@dataclass(frozen=True)
class Delivery:
    alert_id: str
    status: str
    contact: str
    channel: str
    state: str
    attempts: int
    last_error: str | None
    round: str = "0"
    kind: str = "alert"


def backoff_s(attempts: int) -> float:
    return float(min(2 ** attempts, 300))


class AlertService:
    def __init__(self, conn: Conn, config: Config,
                 notifiers: Sequence[Notifier] | None = None,
                 clock: Clock = wall_clock, data_dir: Path | None = None) -> None:
        self.conn = conn
        self.config = config
        self.store = AlertStore(conn, clock)
        conn.executescript(SCHEMA)
        self.notifiers: dict[str, Notifier] = {
            n.channel: n for n in (notifiers if notifiers is not None
                                   else [WebhookNotifier()])}
        self.log_notifier = LogNotifier()
        self.clock = clock
        self.status = StageStatus("alerts")  # routing and escalation
        self.delivery = StageStatus("deliver")  # the channels' workers: /healthz sees them
        self.wake: Wake = threading.Event()
        row = conn.execute("SELECT value FROM alerts_meta WHERE key='cursor'").fetchone()
        self.cursor = int(row[0]) if row else 0
        row = conn.execute("SELECT value FROM alerts_meta WHERE key='ok_cursor'").fetchone()
        self.ok_cursor = int(row[0]) if row else 0
        self._asked = PerThread(conn, lambda c: c)  # /metrics and /healthz ask from elsewhere
        # Past one machine the store is PostgreSQL, shared by every alerts worker: notices
        # are claimed before sending, and a worker is woken by the others' NOTIFY.
        self.shared = shared(conn)
        # Where the console's link secret is kept, unless the environment gives it: this
        # worker's own folder; on the embedded store, by default the store's.
        self._data_dir = data_dir if data_dir is not None or self.shared \
            else data_dir_of(conn)  # type: ignore[arg-type]
        # Where the care team's console answers, for the acknowledge link in each notice.
        self.console_url = (os.environ.get("TELECARE_CONSOLE_URL") or "").rstrip("/") or None
        self._link_secret: str | None = None
        self.listener: Listener | None = None  # on a shared store, while running

    # --- 1. route ------------------------------------------------------------------------

    def _queue(self, c: Conn, alert: Alert, home: HomeConfig, contact: Contact,
               round_: str, kind: str, now: float, by: str | None = None) -> None:
        due = plan.reachable_from(contact, home, alert,
                                  datetime.fromtimestamp(now, UTC)).timestamp()
        for channel, notifier in self.notifiers.items():
            for target in notifier.target(contact):
                c.execute(
                    "INSERT OR IGNORE INTO notifications (alert_id, home, status, round, kind,"
                    " by_whom, contact, channel, target, created, next_attempt)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (alert.id, alert.home, alert.status, round_, kind, by, contact.name,
                     channel, target, now, max(now, due)))

    def _told(self, c: Conn, alert_id: str) -> set[str]:
        rows = c.execute("SELECT DISTINCT contact FROM notifications WHERE alert_id = ? AND"
                         " status = 'firing'", (alert_id,)).fetchall()
        return {r[0] for r in rows}

    def stand_down(self) -> int:
        """Act on the resident's "I'm OK" presses that detection recorded."""
        oks = self.store.oks_since(self.ok_cursor)
        for seq, home in oks:
            done = self.resident_ok(home)
            log.info("the resident of %s said I'm OK: %d alert(s) stood down", home, len(done))
            self.ok_cursor = seq
            self.conn.execute("INSERT INTO alerts_meta VALUES ('ok_cursor', ?) ON CONFLICT"
                              " (key) DO UPDATE SET value = excluded.value", (str(seq),))
        return len(oks)

    def route(self) -> int:
        """New alert changes become notices (and escalations), committed with the stage's
        cursor; the cursor in memory moves only once that commit has landed (a commit that
        failed leaves the same changes to be routed again, not skipped)."""
        if self.shared:
            with Transaction(self.conn) as c:
                # Several alerts workers share the store: one routes at a time, from where
                # the last (this one or another) left off.
                xact_lock(c, "alerts.route")
                row = c.execute("SELECT value FROM alerts_meta WHERE key='cursor'").fetchone()
                self.cursor = int(row[0]) if row else 0
                events = self.store.events_since(self.cursor)
                if events:
                    self._route(c, events)
        else:
            # Looked at outside a transaction: an idle look takes no write lock.
            events = self.store.events_since(self.cursor)
            if events:
                with Transaction(self.conn) as c:
                    self._route(c, events)
        if not events:
            return 0
        self.cursor = events[-1][0]
        for _, alert in events:
            self.log_notifier.send([Notice(alert)], "")
        return len(events)

    def _route(self, c: Conn, events: list[tuple[int, Alert]]) -> None:
        """Within the caller's transaction."""
        now = self._now()
        for _, alert in events:
            home = self.config.home(alert.home)
            if alert.status == "firing":
                for contact in plan.told_at_once(home, alert):
                    self._queue(c, alert, home, contact, "0", "alert", now)
                esc = home.escalation
                if esc is not None and plan.escalates(home, alert):
                    chain = plan.chain(home, alert)
                    c.execute(
                        "INSERT OR IGNORE INTO escalations (alert_id, home, state, started,"
                        " step, next_step_at, next_repeat_at) VALUES (?,?,'open',?,?,?,?)",
                        (alert.id, alert.home, now, 1,
                         now + esc.ack_within.total_seconds() if len(chain) > 1 else None,
                         now + esc.repeat[0].total_seconds() if esc.repeat else None))
            else:
                told = self._told(c, alert.id)
                for contact in home.contacts:
                    if contact.name in told:
                        self._queue(c, alert, home, contact, "resolved", "resolved", now)
                c.execute("UPDATE escalations SET state = 'resolved' WHERE alert_id = ?",
                          (alert.id,))
                _drop_reminders(c, alert.id)
        c.execute("INSERT INTO alerts_meta VALUES ('cursor', ?) ON CONFLICT (key) DO"
                  " UPDATE SET value = excluded.value", (str(events[-1][0]),))
        notify(c, "telecare_notices")

    # --- 2. escalate ---------------------------------------------------------------------

    def escalate(self) -> int:
        now = self._now()
        due = self.conn.execute(
            "SELECT alert_id, step, next_step_at, repeats, next_repeat_at FROM escalations"
            " WHERE state IN ('open', 'held') AND (next_step_at <= ? OR next_repeat_at <= ?)",
            (now, now)).fetchall()
        done = 0
        for alert_id, step, next_step_at, repeats, next_repeat_at in due:
            alert = self.store.get(alert_id)
            if alert is None or alert.status != "firing":
                continue
            home = self.config.home(alert.home)
            esc = home.escalation
            if esc is None:
                continue
            chain = plan.chain(home, alert)
            with Transaction(self.conn) as c:
                state = c.execute("SELECT state, step, repeats FROM escalations WHERE"
                                  " alert_id = ?" + (" FOR UPDATE" if self.shared else ""),
                                  (alert_id,)).fetchone()
                if state is None or state[0] not in ("open", "held") or state[1] != step or \
                        state[2] != repeats:
                    continue  # acknowledged or moved on meanwhile
                if state[0] == "held":
                    # The hold ran out with nobody acknowledging: the chain goes on from here.
                    c.execute("UPDATE escalations SET state = 'open' WHERE alert_id = ?",
                              (alert_id,))
                    log.info("the hold on %s ran out; escalation resumes", alert_id)
                told = self._told(c, alert_id)  # before this step: the newly asked get no
                # reminder in the same breath
                if next_step_at is not None and next_step_at <= now:
                    if step < len(chain):
                        self._queue(c, alert, home, chain[step], f"step{step}", "alert", now)
                        log.info("escalating %s to the next in the chain (step %d)",
                                 alert_id, step + 1)
                    step += 1
                    next_step_at = now + esc.ack_within.total_seconds() \
                        if step < len(chain) else None
                if next_repeat_at is not None and next_repeat_at <= now:
                    repeats += 1
                    for contact in chain:
                        if contact.name in told:
                            self._queue(c, alert, home, contact, f"repeat{repeats}",
                                        "reminder", now)
                    interval = esc.repeat[min(repeats, len(esc.repeat) - 1)]
                    next_repeat_at = now + interval.total_seconds()
                c.execute("UPDATE escalations SET step=?, next_step_at=?, repeats=?,"
                          " next_repeat_at=? WHERE alert_id=?",
                          (step, next_step_at, repeats, next_repeat_at, alert_id))
                notify(c, "telecare_notices")
                done += 1
        return done

    # --- 3. deliver ----------------------------------------------------------------------

    def deliver(self, channel: str | None = None, conn: Conn | None = None,
                store: AlertStore | None = None) -> int:
        """Send due notifications (of one channel, or all). Several for one person and home
        go as one message on channels that group. A delivery worker passes its own
        connection and store: a connection is never shared between threads."""
        conn = conn or self.conn
        store = store or self.store
        now = self._now()
        # Each notice shows the alert as it was logged at that status: a reminder of an alert
        # that has since resolved still says firing; it is not an all-clear.
        query = ("SELECT n.id, n.channel, n.target, n.contact, n.home, n.attempts, n.round,"
                 " n.kind, n.by_whom, e.body FROM notifications n LEFT JOIN alert_events e"
                 " ON e.alert_id = n.alert_id AND e.status = n.status"
                 " WHERE n.state = 'pending' AND n.next_attempt <= ?")
        args: tuple[object, ...] = (now,)
        if channel is not None:
            query += " AND n.channel = ?"
            args += (channel,)
        # The most severe first: a call for help is not sent after a backlog's routine
        # notices (each channel sends in this order).
        query += (" ORDER BY (SELECT CASE a.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1"
                  " WHEN 'medium' THEN 2 ELSE 3 END FROM alerts a WHERE a.id = n.alert_id),"
                  " n.id LIMIT 200")
        if self.shared:
            rows = self._claim(conn, query, args, now)
        else:
            rows = conn.execute(query, args).fetchall()
        batches: dict[tuple[str, str, str, str], list[tuple[int, int, Notice]]] = {}
        for row_id, chan, target, contact, home, attempts, round_, kind, by, body in rows:
            if body is None:  # cannot happen through route(); never left to clog the queue
                conn.execute("UPDATE notifications SET state='failed', last_error=? WHERE"
                             " id=?", ("no such alert", row_id))
                continue
            alert = Alert.from_json_obj(json.loads(body))
            link = None
            secret = self._link_key() if self.console_url and kind in ("alert", "reminder") \
                and alert.status == "firing" else None
            if secret is not None:
                link = f"{self.console_url}/ack/{ack_token(secret, alert.id, contact)}"
            notice = Notice(alert, kind, round_, by, ack_url=link)
            notifier = self.notifiers.get(chan)
            key = (chan, target, contact, home) if notifier is not None and \
                notifier.groups else (chan, target, contact, str(row_id))
            batches.setdefault(key, []).append((row_id, attempts, notice))
        leased_at = time.monotonic()
        unsent = [row_id for batch in batches.values() for row_id, _, _ in batch]
        for (chan, target, contact, _), batch in batches.items():
            if self.shared and time.monotonic() - leased_at > CLAIM_S / 3:
                # Slow channels (each send may take its timeout): the claim on what is still
                # to send is renewed before it could run out under another worker's eyes.
                self._lease(conn, unsent, self._now() + CLAIM_S)
                leased_at = time.monotonic()
            batch.sort(key=lambda b: -severity_rank(b[2].alert.severity))
            self._send(conn, store, chan, target, contact, batch)
            done = {row_id for row_id, _, _ in batch}
            unsent = [i for i in unsent if i not in done]
        return len(rows)

    @staticmethod
    def _lease(conn: Conn, ids: list[int], until: float) -> None:
        """Claimed notices not yet sent are nobody else's until `until`."""
        if ids:
            conn.execute("UPDATE notifications SET next_attempt = ? WHERE state = 'pending' AND"
                         " id IN (" + ",".join("?" * len(ids)) + ")", (until, *ids))

    def _claim(self, conn: Conn, query: str, args: tuple[object, ...],
               now: float) -> list[Any]:
        """Due notices taken by this worker alone, on a store shared by several: locked
        with SKIP LOCKED (another worker takes the next ones, never these) and leased until
        CLAIM_S from now. Sent, they are marked sent; a worker that dies while sending
        leaves them to come due again when the lease runs out (the webhook's idempotency
        key lets its receiver drop the second copy)."""
        with Transaction(conn) as c:
            rows = c.execute(query + " FOR UPDATE OF n SKIP LOCKED", args).fetchall()
            self._lease(c, [r[0] for r in rows], now + CLAIM_S)
        return list(rows)

    def _send(self, conn: Conn, store: AlertStore, channel: str, target: str,
              contact: str, batch: list[tuple[int, int, Notice]]) -> None:
        notifier = self.notifiers.get(channel)
        attempts = max(a for _, a, _ in batch) + 1
        ids = [row_id for row_id, _, _ in batch]
        marks = ",".join("?" * len(ids))
        try:
            if notifier is None:
                raise DeliveryError(f"no notifier for channel {channel}", False)
            notices = [n for _, _, n in batch]
            found = self._contact(notices[0].alert.home, contact)
            if channel == "webhook" and found is not None and found[1].webhook_secret:
                try:
                    secret = read_secret(found[1].webhook_secret)
                except ValueError as missing:
                    raise DeliveryError(str(missing), False) from None
                notices = [replace(n, secret=secret) for n in notices]
            notifier.send(notices, target)
        except DeliveryError as exc:
            give_up = not exc.retryable or attempts >= MAX_ATTEMPTS
            conn.execute(
                f"UPDATE notifications SET state=?, attempts=?, next_attempt=?, last_error=?"
                f" WHERE id IN ({marks})",
                ("failed" if give_up else "pending", attempts,
                 self._now() + backoff_s(attempts), exc.reason, *ids))
            what = ", ".join(n.alert.id for _, _, n in batch)
            who = self._who(batch[0][2].alert.home, contact)
            if give_up:
                log.error("could not notify %s of %s by %s: %s (gave up after %d tries)",
                          who, what, channel, exc.reason, attempts)
                self._report_failure(conn, store, ids[0], contact, channel, exc.reason,
                                     batch)
            else:
                log.warning("notifying %s of %s by %s failed: %s; retrying",
                            who, what, channel, exc.reason)
            return
        except Exception as exc:  # a notifier's own bug must not stop the others
            conn.execute(
                f"UPDATE notifications SET attempts=?, next_attempt=?, last_error=?"
                f" WHERE id IN ({marks})",
                (attempts, self._now() + backoff_s(attempts),
                 f"notifier error: {exc.__class__.__name__}", *ids))
            log.exception("the %s notifier failed unexpectedly", channel)
            return
        self._mark_sent(conn, f"UPDATE notifications SET state='sent', attempts=?, sent_at=?"
                              f" WHERE id IN ({marks})", (attempts, self._now(), *ids))

    def _mark_sent(self, conn: Conn, sql: str, args: tuple[object, ...],
                   patience_s: float = 60.0) -> None:
        """Record that a notice went. It has gone, whatever happens to the store: if the
        store cannot be written (PostgreSQL restarting, a full disk), keep trying for a
        while, since a notice left pending would be sent again."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                conn.execute(sql, args)
                return
            except Exception as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("could not yet record a notice as sent (%s); trying again",
                            describe(exc))
                time.sleep(0.5)

    def _link_key(self) -> str | None:
        """The console's secret for acknowledge links: the environment's, else the one kept
        in this worker's data folder (None, and notices go without a link, when a worker
        on a shared store was given neither)."""
        if self._link_secret is None:
            if self._data_dir is None and not os.environ.get("TELECARE_CONSOLE_SECRET"):
                return None
            self._link_secret = console_secret(self._data_dir or Path("."))
        return self._link_secret

    def _now(self) -> float:
        """The service's clock as Unix seconds, as the store keeps times."""
        return self.clock().timestamp()

    def _contact(self, home: str, name: str) -> tuple[int, Contact] | None:
        """A contact of a home by name, with their place in its list."""
        if not self.config.known(home):
            return None
        return next(((i, c) for i, c in enumerate(self.config.home(home).contacts)
                     if c.name == name), None)

    def _who(self, home: str, contact: str) -> str:
        """A contact as the log names them: by place and role, never by name (logs leave
        the care team's hands; names and addresses stay in the store)."""
        found = self._contact(home, contact)
        if found is None:
            return f"a contact of home {home}"
        return f"contact {found[0] + 1} ({found[1].role}) of home {home}"

    def _report_failure(self, conn: Conn, store: AlertStore, row_id: int,
                        contact: str, channel: str, reason: str,
                        batch: list[tuple[int, int, Notice]]) -> None:
        """A notice that could not be delivered becomes an alert for the technical team (it
        routes like any device fault), so a wrong address or a dead service is fixed before
        the next emergency. Never for a failure to deliver such an alert itself."""
        about = [n.alert for _, _, n in batch if n.alert.rule != "notification_failed"]
        if not about:
            return
        first = about[0]
        now = self.clock()
        failed = Alert(
            id=make_alert_id(first.home, "notification_failed", f"{channel}-{row_id}", now),
            home=first.home, rule="notification_failed", severity="low", raised_at=now,
            status="firing",
            message=(f"Could not reach {contact} by {channel} about the "
                     f"{first.rule.replace('_', ' ')} alert at home {first.home}: {reason}. "
                     "Check their details in the home's plan, or the service."),
            evidence={"audience": "technical", "contact": contact, "channel": channel,
                      "reason": reason, "alerts": [a.id for a in about]})
        with Transaction(conn) as c:
            store.record_in(c, [failed])
        self.wake.set()

    def step(self) -> int:
        return self.stand_down() + self.route() + self.escalate() + self.deliver()

    # --- what people do ------------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str, note: str | None = None) -> bool:
        """`by` is dealing with it: the chain and reminders stop; the others told are told
        who. False if there is no such alert. A second acknowledgement is recorded too."""
        alert = self.store.get(alert_id)
        if alert is None:
            return False
        now = self._now()
        home = self.config.home(alert.home)
        with Transaction(self.conn) as c:
            c.execute("INSERT OR IGNORE INTO acknowledgements VALUES (?,?,?,?)",
                      (alert_id, by, now, note))
            first = c.execute("UPDATE escalations SET state='acknowledged' WHERE alert_id=?"
                              " AND state IN ('open', 'held')", (alert_id,)).rowcount
            _drop_reminders(c, alert_id)
            told = self._told(c, alert_id)
            if first or home.escalation is None:
                for contact in home.contacts:
                    if contact.name in told and contact.name != by:
                        self._queue(c, alert, home, contact, f"ack:{by}", "acknowledged",
                                    now, by=by)
        self.wake.set()
        log.info("%s acknowledged by a contact", alert_id)
        return True

    def hold(self, alert_id: str, by: str, minutes: float) -> bool:
        """`by` is looking into it and asks for `minutes`: the chain's next step and the
        reminders wait until then, and resume by themselves if nobody has acknowledged.
        False if the alert is not firing or its home has no escalation to hold."""
        alert = self.store.get(alert_id)
        if alert is None or alert.status != "firing" or minutes <= 0:
            return False
        now = self._now()
        until = now + minutes * 60
        with Transaction(self.conn) as c:
            held = c.execute(
                "UPDATE escalations SET state = 'held', next_step_at = CASE WHEN next_step_at"
                " IS NULL OR next_step_at >= ? THEN next_step_at ELSE ? END, next_repeat_at ="
                " CASE WHEN next_repeat_at IS NULL OR next_repeat_at >= ? THEN next_repeat_at"
                " ELSE ? END WHERE alert_id = ? AND state IN ('open', 'held')",
                (until, until, until, until, alert_id)).rowcount
            if held:
                c.execute("INSERT INTO holds VALUES (?,?,?,?)", (alert_id, by, now, until))
        self.wake.set()
        return bool(held)

    def resolve_by_person(self, alert_id: str, by: str, outcome: str) -> bool:
        alert = self.store.get(alert_id)
        if alert is None or alert.status != "firing":
            return False
        done = alert.resolve(self.clock(),
                             f"Closed by {by}: {outcome}")
        with Transaction(self.conn) as c:
            self.store.record_in(c, [done])
        self.wake.set()
        return True

    def resident_ok(self, home: str) -> list[str]:
        """The resident pressed "I'm OK": every firing alert below critical at their home is
        stood down and recorded as closed by them; a critical one stays for a person."""
        stood_down = []
        for alert in self.store.firing(home):
            if alert.severity != "critical" and \
                    self.resolve_by_person(alert.id, RESIDENT, "they answered \"I'm OK\" "
                                                               "from their own device"):
                stood_down.append(alert.id)
        return stood_down

    def feedback(self, alert_id: str, by: str, verdict: str, why: str | None = None) -> bool:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")
        if self.store.get(alert_id) is None:
            return False
        with Transaction(self.conn) as c:
            c.execute("INSERT INTO feedback VALUES (?,?,?,?,?) ON CONFLICT (alert_id, by_whom)"
                      " DO UPDATE SET verdict = excluded.verdict, why = excluded.why,"
                      " at = excluded.at", (alert_id, by, verdict, why, self._now()))
        return True

    def counts(self) -> dict[tuple[str, str], int]:
        """Notifications by (channel, state), for /metrics: a failed count that grows is a
        channel to fix. Asked from the metrics thread, on its own connection."""
        return {(ch, st): n for ch, st, n in self._asked.get().execute(
            "SELECT channel, state, count(*) FROM notifications GROUP BY channel, state")}

    def backlog(self) -> dict[str, int]:
        """Alert changes not yet routed, and notices due but not yet sent, for /healthz and
        /metrics. Asked from the metrics thread, on its own connection."""
        conn = self._asked.get()
        top = conn.execute("SELECT coalesce(max(seq), 0) FROM alert_events").fetchone()[0]
        due = conn.execute("SELECT count(*) FROM notifications WHERE state = 'pending' AND"
                           " next_attempt <= ?", (self._now(),)).fetchone()[0]
        return {"alert_changes": max(int(top) - self.cursor, 0), "notices_due": int(due)}

    def deliveries(self) -> list[Delivery]:
        rows = self.conn.execute(
            "SELECT alert_id, status, contact, channel, state, attempts, last_error, round,"
            " kind FROM notifications ORDER BY id").fetchall()
        return [Delivery(*r) for r in rows]

    def open_stories(self) -> list[tuple[Alert, dict[str, list[Any]]]]:
        """Every firing alert with its story (as `story`), in a few queries whatever their
        number: the console's queue asks for it at every change."""
        c = self.conn
        firing = "(SELECT id FROM alerts WHERE status = 'firing')"
        alerts = self.store.all_firing()
        out: dict[str, dict[str, list[Any]]] = {
            a.id: {"acks": [], "told": [], "escalation": [], "feedback": [], "holds": []}
            for a in alerts}
        queries = (
            ("acks", "SELECT alert_id, by_whom, at, note FROM acknowledgements WHERE alert_id"
                     f" IN {firing} ORDER BY at"),
            ("told", "SELECT alert_id, contact, channel, kind, state, created, sent_at,"
                     f" last_error FROM notifications WHERE alert_id IN {firing} ORDER BY id"),
            ("escalation", "SELECT alert_id, state, step, next_step_at, repeats,"
                           f" next_repeat_at FROM escalations WHERE alert_id IN {firing}"),
            ("feedback", "SELECT alert_id, by_whom, verdict, why, at FROM feedback WHERE"
                         f" alert_id IN {firing} ORDER BY at"),
            ("holds", f"SELECT alert_id, by_whom, at, until FROM holds WHERE alert_id IN"
                      f" {firing} ORDER BY at"))
        for part, sql in queries:
            for row in c.execute(sql):
                if row[0] in out:
                    out[row[0]][part].append(tuple(row[1:]))
        return [(a, out[a.id]) for a in alerts]

    def story(self, alert_id: str) -> dict[str, object]:
        """What happened to one alert, for the console: who acknowledged it when, who was
        told (by which channel, when, how it went), where the escalation stands, and the
        feedback on it."""
        c = self.conn
        acks = c.execute("SELECT by_whom, at, note FROM acknowledgements WHERE alert_id = ?"
                         " ORDER BY at", (alert_id,)).fetchall()
        told = c.execute("SELECT contact, channel, kind, state, created, sent_at, last_error"
                         " FROM notifications WHERE alert_id = ? ORDER BY id",
                         (alert_id,)).fetchall()
        esc = c.execute("SELECT state, step, next_step_at, repeats, next_repeat_at FROM"
                        " escalations WHERE alert_id = ?", (alert_id,)).fetchone()
        verdicts = c.execute("SELECT by_whom, verdict, why, at FROM feedback WHERE"
                             " alert_id = ? ORDER BY at", (alert_id,)).fetchall()
        holds = c.execute("SELECT by_whom, at, until FROM holds WHERE alert_id = ? ORDER BY"
                          " at", (alert_id,)).fetchall()
        return {"acks": acks, "told": told, "escalation": esc, "feedback": verdicts,
                "holds": holds}

    # --- running -------------------------------------------------------------------------

    def _channel_worker(self, channel: str, kick: threading.Event, done: threading.Event,
                        poll_s: float) -> None:
        """Deliver one channel's notices: woken when the router queues some, and every
        `poll_s` for retries coming due; after `done`, one last drain."""
        conn = self._asked.reopen()
        store = AlertStore(conn, self.clock)
        while True:
            kick.wait(poll_s)
            kick.clear()
            finished = done.is_set()
            try:
                while self.deliver(channel, conn, store):
                    pass
                self.delivery.ok()
            except Exception as exc:  # the store failed (a full disk): wait and try again
                self.delivery.failed(exc)
                log.error("delivery on %s failed (%s); retrying", channel, describe(exc))
                done.wait(1.0)
            if finished:
                break
        conn.close()

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        kicks = {ch: threading.Event() for ch in self.notifiers}
        done = threading.Event()
        workers = [threading.Thread(target=self._channel_worker,
                                    args=(ch, kicks[ch], done, poll_s),
                                    name=f"deliver-{ch}", daemon=True)
                   for ch in self.notifiers]
        for w in workers:
            w.start()

        def woken() -> None:  # another worker (or detection) changed the shared store
            self.wake.set()
            for kick in kicks.values():
                kick.set()

        listener = self.listener = Listener(
            self.conn.url, ("telecare_alerts", "telecare_notices"),  # type: ignore[attr-defined]
            woken).start() if self.shared else None
        while not stop.is_set() and self.status.fatal is None:
            # Each pass commits whole, so trying again after a failure is safe.
            worked = self.status.attempt(
                stop, "routing alerts", lambda: self.stand_down() + self.route() +
                self.escalate())
            if worked is None:
                continue
            if worked:
                for kick in kicks.values():
                    kick.set()
            else:
                self.wake.wait(poll_s)
                self.wake.clear()
        self.status.last("routing alerts", self.route)  # what detection committed last
        done.set()
        for kick in kicks.values():
            kick.set()
        for w in workers:
            w.join(30)
        if listener is not None:
            listener.stop()


def _drop_reminders(c: Conn, alert_id: str) -> None:
    """Someone acted: reminders not yet sent are no longer needed."""
    c.execute("UPDATE notifications SET state='dropped' WHERE alert_id=? AND state='pending'"
              " AND kind='reminder'", (alert_id,))


def acting_service(conn: Conn, config: Config) -> AlertService:
    """The alerts service for people's actions outside the running alerts stage (the CLI's
    `ack`, `close`, `feedback`; the console). Its notifiers only say which channels reach
    whom, so the notices an action queues (telling the others who took it on) cover every
    channel; the running alerts stage sends them."""
    from alerts.notifiers import default_notifiers

    return AlertService(conn, config, default_notifiers(os.environ.get("TELECARE_MQTT_URL")))
