"""The care team's web console: the live alert queue and one-click acknowledgement.

FastAPI with Jinja2 templates and htmx (vendored in `static/`: the page works with no
internet). The queue updates over server-sent events: every open console is told within a
fraction of a second when any alert changes, is acknowledged or gets feedback, and fetches the
queue again. Every form also works without JavaScript (a plain POST, then a redirect back).

Every action goes through `AlertService`, the same code path as `telecare ack`, `close` and
`feedback`, and is written to the console's audit log. Logins are by name and password
(Argon2id) into a signed, HttpOnly, SameSite session cookie (Secure when served over TLS);
every form carries a CSRF token bound to the session. A JSON API beside the pages takes
bearer tokens: `GET /api/v1/alerts?status=firing`, `POST /api/v1/alerts/{id}/ack`.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time, and the dependencies they name are local to `make_app`.
import asyncio
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from alerts.service import AlertService, acting_service
from ingest.store import ReadingStore
from telecare.alert import Alert, severity_rank
from telecare.app.console.users import User, Users
from telecare.config import Config
from telecare.db import connect, connect_alert_store
from telecare.links import console_secret, read_ack_token

HERE = Path(__file__).resolve().parent
SEVERITY_WORDS = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low",
                  "info": "Info"}
EVENT_POLL_S = 0.1  # how often the store is asked whether anything changed (one query)
# Stands in for each session's CSRF token in a queue rendered once for everyone who sees it.
_CSRF_SLOT = "\x00csrf\x00"


def _age(raised_at: datetime, now: datetime) -> str:
    minutes = int((now - raised_at).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"


def _clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S") if ts else ""


class Console:
    """The state one console process shares between requests: its own store connection
    (a lock around it: requests run on a thread pool), the people, the alerts service."""

    def __init__(self, config: Config, data_dir: Path, service: AlertService | None = None,
                 secure_cookies: bool = False) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        # The alert store (PostgreSQL past one machine, shared by every console), and the
        # local store for the readings a home's page draws.
        self.conn = connect_alert_store(self.data_dir)
        self.lock = threading.Lock()
        self.users = Users(self.conn)
        self.service = service if service is not None else acting_service(self.conn, config)
        self.secure_cookies = secure_cookies
        self.readings = ReadingStore(connect(self.data_dir))
        self._version: tuple[Any, ...] = ()
        self._version_at = 0.0
        # The queue as rendered for each view (who may see what, which home) at one version
        # of the store: after a change, fifty open consoles ask at once, and rendering a
        # thousand alerts fifty times took seconds; now once, and each gets its own token.
        self._rendered: dict[tuple[Any, ...], str] = {}
        self._render_lock = threading.Lock()

    def version(self) -> tuple[Any, ...]:
        """Changes whenever an alert changes, is acknowledged or gets feedback. Asked by
        every open console's event stream; the store is asked at most every EVENT_POLL_S."""
        now = time.monotonic()
        if now - self._version_at >= EVENT_POLL_S:
            with self.lock:
                row = self.conn.execute(
                    "SELECT (SELECT coalesce(max(seq), 0) FROM alert_events),"
                    " (SELECT count(*) FROM acknowledgements),"
                    " (SELECT count(*) FROM feedback),"
                    " (SELECT count(*) FROM holds),"
                    " (SELECT count(*) FROM escalations WHERE state = 'open'),"
                    " (SELECT coalesce(max(id), 0) FROM notifications),"
                    " (SELECT count(*) FROM notifications WHERE state != 'pending')").fetchone()
            self._version, self._version_at = tuple(row), now
        return self._version

    def touched(self) -> None:
        """This console changed something: the next look at the store is not to wait for
        the cache (a page shown just after acknowledging shows it acknowledged)."""
        self._version_at = 0.0

    def open_alerts(self, user: User, home: str | None = None, taken: str | None = None
                    ) -> list[dict[str, Any]]:
        """Firing alerts this person may see, most severe first, then oldest first. `taken`:
        "no" (nobody has it), "yes" (someone has), or a person's name (they have it)."""
        with self.lock:
            stories = [(a, st) for a, st in self.service.open_stories()
                       if user.sees(a) and (home is None or a.home == home)]
        stories.sort(key=lambda x: (-severity_rank(x[0].severity), x[0].raised_at))
        now = datetime.now(UTC)
        rows = [self._row(a, st, now) for a, st in stories]
        if taken == "no":
            return [r for r in rows if not r["acked_by"]]
        if taken == "yes":
            return [r for r in rows if r["acked_by"]]
        if taken:
            return [r for r in rows if any(name == taken for name, _ in r["acked_by"])]
        return rows

    def _row(self, alert: Alert, story: dict[str, list[Any]], now: datetime
             ) -> dict[str, Any]:
        holds = [(h[0], _clock(h[2])) for h in story["holds"] if h[2] > now.timestamp()]
        esc = story["escalation"][0] if story["escalation"] else None
        return {"alert": alert, "words": SEVERITY_WORDS[alert.severity],
                "age": _age(alert.raised_at, now),
                "raised": alert.raised_at.isoformat(),
                "acked_by": [(a[0], _clock(a[1])) for a in story["acks"]],
                "held": holds[-1] if holds and esc is not None and esc[0] == "held" else None,
                "told": [{"who": t[0], "channel": t[1], "kind": t[2], "state": t[3],
                          "at": _clock(t[5] or t[4])} for t in story["told"]],
                "escalation": esc}

    def queue_html(self, user: User, home: str | None, taken: str | None, csrf: str,
                   render: Callable[[list[dict[str, Any]], str], str]) -> str:
        """The queue for this person, rendered once per view and version of the store."""
        version = self.version()
        key = (version, user.role, user.homes, home, taken)
        with self._render_lock:
            html = self._rendered.get(key)
            if html is None:
                html = render(self.open_alerts(user, home, taken), _CSRF_SLOT)
                if self._rendered and next(iter(self._rendered))[0] != version:
                    self._rendered = {}
                if len(self._rendered) < 256:
                    self._rendered[key] = html
        return html.replace(_CSRF_SLOT, csrf)

    def alert_for(self, user: User, alert_id: str) -> Alert:
        """The alert if this person may see it; 404 otherwise (whether it exists or not)."""
        with self.lock:
            alert = self.service.store.get(alert_id)
        if alert is None or not user.sees(alert):
            raise HTTPException(404, "no such alert")
        return alert


def make_app(console: Console) -> FastAPI:
    app = FastAPI(title="telecare console", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=console_secret(console.data_dir),
                       session_cookie="telecare_session", same_site="lax",
                       https_only=console.secure_cookies, max_age=12 * 3600)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")

    def csrf(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(24)
        return str(token)

    def check_csrf(request: Request, token: str) -> None:
        if not token or not secrets.compare_digest(token, request.session.get("csrf", "")):
            raise HTTPException(403, "the form has expired: load the page again")

    def who(request: Request) -> User | None:
        name = request.session.get("user")
        return console.users.get(name) if name else None

    def page_user(request: Request) -> User:
        user = who(request)
        if user is None:
            raise HTTPException(303, headers={"Location": "/login"})
        return user

    def api_user(request: Request) -> User:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        user = console.users.by_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HTTPException(401, "a bearer token is needed",
                                headers={"WWW-Authenticate": "Bearer"})
        return user

    def back(request: Request) -> Any:
        """After a form: htmx gets the fresh queue; a plain browser is sent back."""
        console.touched()
        if request.headers.get("hx-request"):
            return queue_fragment(request, page_user(request))
        return RedirectResponse("/", status_code=303)

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return Response(status_code=204)

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, failed: int = 0) -> Any:
        return templates.TemplateResponse(request, "login.html",
                                          {"csrf": csrf(request), "failed": failed})

    @app.post("/login")
    def login(request: Request, name: Annotated[str, Form()],
              password: Annotated[str, Form()], token: Annotated[str, Form()] = "") -> Any:
        check_csrf(request, token)
        with console.lock:
            user = console.users.login(name, password)
        if user is None:
            return RedirectResponse("/login?failed=1", status_code=303)
        request.session.clear()  # a new session for the logged-in person
        request.session["user"] = user.name
        csrf(request)
        with console.lock:
            console.users.audit(user.name, "login", None)
        return RedirectResponse("/", status_code=303)

    @app.post("/logout")
    def logout(request: Request, token: Annotated[str, Form()] = "") -> Any:
        check_csrf(request, token)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    fragment = templates.get_template("_queue.html")

    def queue_html(request: Request, user: User, home: str | None,
                   taken: str | None = None) -> str:
        return console.queue_html(user, home or None, taken or None, csrf(request),
                                  lambda rows, token: fragment.render(rows=rows, csrf=token))

    def queue_fragment(request: Request, user: User, home: str | None = None,
                       taken: str | None = None) -> Any:
        return HTMLResponse(queue_html(request, user, home, taken))

    @app.get("/", response_class=HTMLResponse)
    def queue_page(request: Request, user: Annotated[User, Depends(page_user)],
                   home: str | None = None, taken: str | None = None) -> Any:
        return templates.TemplateResponse(request, "queue.html", {
            "queue_html": queue_html(request, user, home, taken), "csrf": csrf(request),
            "user": user, "home": home or "", "taken": taken or ""})

    @app.get("/queue", response_class=HTMLResponse)
    def queue(request: Request, user: Annotated[User, Depends(page_user)],
              home: str | None = None, taken: str | None = None) -> Any:
        return queue_fragment(request, user, home, taken)

    @app.get("/events")
    async def events(request: Request, user: Annotated[User, Depends(page_user)]) -> Any:
        async def stream() -> AsyncIterator[str]:
            last = await asyncio.to_thread(console.version)
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                await asyncio.sleep(EVENT_POLL_S)
                now = await asyncio.to_thread(console.version)
                if now != last:
                    last = now
                    yield "event: changed\ndata: queue\n\n"
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    def link_target(token: str) -> tuple[Alert, str]:
        """The alert and person an acknowledge link names, or the page saying why not."""
        found = read_ack_token(console_secret(console.data_dir), token)
        if isinstance(found, str):
            raise HTTPException(410 if found == "expired" else 404,
                                "this link has expired: log in to the console"
                                if found == "expired" else "this link is not valid")
        alert_id, contact = found
        with console.lock:
            alert = console.service.store.get(alert_id)
        if alert is None:
            raise HTTPException(404, "this link is not valid")
        return alert, contact

    @app.get("/ack/{link}", response_class=HTMLResponse)
    def ack_link_page(request: Request, link: str) -> Any:
        """The link in a notice: one button to say "I'm dealing with it". Opening it changes
        nothing by itself: mail scanners and link previews open links too."""
        alert, contact = link_target(link)
        user = who(request)
        return templates.TemplateResponse(request, "ack_link.html", {
            "csrf": csrf(request), "user": user, "alert": alert, "link": link,
            "as_whom": user.name if user else contact,
            "words": SEVERITY_WORDS[alert.severity]})

    @app.post("/ack/{link}", response_class=HTMLResponse)
    def ack_link(request: Request, link: str, token: Annotated[str, Form()] = "") -> Any:
        check_csrf(request, token)
        alert, contact = link_target(link)
        user = who(request)
        # Logged in: as that person. Not: once only, as the person the notice went to.
        if user is None:
            with console.lock:
                first_use = console.users.use_link(link)
            if not first_use:
                raise HTTPException(410, "this link has been used: log in to the console")
        by = user.name if user else contact
        with console.lock:
            console.service.acknowledge(alert.id, by)
            console.users.audit(by, "acknowledge (link)", alert.id,
                                None if user else "one-time link")
        console.touched()
        return templates.TemplateResponse(request, "ack_link.html", {
            "csrf": csrf(request), "user": user, "alert": alert, "done": True, "as_whom": by,
            "words": SEVERITY_WORDS[alert.severity]})

    @app.get("/homes/{home}", response_class=HTMLResponse)
    def home_page(request: Request, home: str,
                  user: Annotated[User, Depends(page_user)]) -> Any:
        """A home: the resident's plan, the last 24 hours by room and hour, devices with
        battery and last report, and the home's alerts with their feedback."""
        found = console.config.homes.get(home)
        if found is None or not user.sees_home(home):
            raise HTTPException(404, "no such home")
        with console.lock:
            day = console.readings.day_of(home)
            last = console.readings.devices_of(home)
            history = [a for a in console.service.store.of_home(home) if user.sees(a)][-50:]
            verdicts = {a.id: console.service.story(a.id)["feedback"] for a in history}
        tz = found.tz
        room_of = {d.id: d.room or d.id for d in found.devices}
        hours: list[str] = []
        grid: dict[str, dict[str, int]] = {}
        if day:
            end = day[-1][2].astimezone(tz).replace(minute=0, second=0, microsecond=0)
            hours = [(end - timedelta(hours=23 - i)).strftime("%H") for i in range(24)]
            for device, kind, ts in day:
                if kind in ("temperature", "humidity", "heartbeat"):
                    continue  # what the house reports by itself is not activity
                row = grid.setdefault(room_of.get(device, device), dict.fromkeys(hours, 0))
                hour = ts.astimezone(tz).strftime("%H")
                if hour in row:
                    row[hour] += 1
        devices = [{"id": d.id, "kind": d.kind, "room": d.room or "", "role": d.role or "",
                    "last": last[d.id][0].astimezone(tz).strftime("%a %d %b %H:%M")
                    if d.id in last else "never", "battery": last[d.id][1]
                    if d.id in last else None} for d in found.devices]
        return templates.TemplateResponse(request, "home.html", {
            "csrf": csrf(request), "user": user, "home": found, "hours": hours,
            "grid": grid, "devices": devices, "history": list(reversed(history)),
            "verdicts": verdicts,
            "contacts": [(c.name, c.role) for c in found.contacts]})

    @app.get("/report", response_class=HTMLResponse)
    def report(request: Request, user: Annotated[User, Depends(page_user)]) -> Any:
        """Response figures per severity and per home, against the social-alarm yardstick."""
        from alerts.report import YARDSTICK, gather

        with console.lock:
            by_sev, by_home = gather(console.conn)
        homes = {h: t.row() for h, t in sorted(by_home.items()) if user.sees_home(h)}
        severities = {s: t.row() for s, t in by_sev.items()} \
            if user.role in ("operator", "admin") else {}
        return templates.TemplateResponse(request, "report.html", {
            "csrf": csrf(request), "user": user, "severities": severities, "homes": homes,
            "yardstick": YARDSTICK})

    @app.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, user: Annotated[User, Depends(page_user)]) -> Any:
        """Who did what, when: every login and action taken in the console."""
        if user.role not in ("operator", "admin"):
            raise HTTPException(404, "no such page")
        with console.lock:
            rows = [(datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S"), who, what,
                     alert_id or "", detail or "")
                    for at, who, what, alert_id, detail in console.users.audit_log(200)]
        return templates.TemplateResponse(request, "audit.html", {
            "csrf": csrf(request), "user": user, "rows": rows})

    @app.post("/alerts/{alert_id}/ack")
    def ack(request: Request, alert_id: str, user: Annotated[User, Depends(page_user)],
            token: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Any:
        check_csrf(request, token)
        console.alert_for(user, alert_id)
        with console.lock:
            console.service.acknowledge(alert_id, user.name, note or None)
            console.users.audit(user.name, "acknowledge", alert_id, note or None)
        return back(request)

    @app.post("/alerts/{alert_id}/hold")
    def hold(request: Request, alert_id: str, user: Annotated[User, Depends(page_user)],
             minutes: Annotated[int, Form(ge=1, le=240)] = 15,
             token: Annotated[str, Form()] = "") -> Any:
        check_csrf(request, token)
        console.alert_for(user, alert_id)
        with console.lock:
            if console.service.hold(alert_id, user.name, minutes):
                console.users.audit(user.name, f"hold {minutes} min", alert_id)
        return back(request)

    @app.post("/alerts/{alert_id}/close")
    def close(request: Request, alert_id: str, user: Annotated[User, Depends(page_user)],
              outcome: Annotated[str, Form()], token: Annotated[str, Form()] = "") -> Any:
        check_csrf(request, token)
        console.alert_for(user, alert_id)
        with console.lock:
            console.service.resolve_by_person(alert_id, user.name, outcome)
            console.users.audit(user.name, "close", alert_id, outcome)
        return back(request)

    @app.post("/alerts/{alert_id}/feedback")
    def feedback(request: Request, alert_id: str, user: Annotated[User, Depends(page_user)],
                 verdict: Annotated[str, Form()], why: Annotated[str, Form()] = "",
                 token: Annotated[str, Form()] = "") -> Any:
        check_csrf(request, token)
        console.alert_for(user, alert_id)
        if verdict not in ("useful", "false_alarm"):
            raise HTTPException(422, "verdict is useful or false_alarm")
        with console.lock:
            console.service.feedback(alert_id, user.name, verdict, why or None)
            console.users.audit(user.name, f"feedback {verdict}", alert_id, why or None)
        return back(request)

    @app.get("/api/v1/alerts")
    def api_alerts(user: Annotated[User, Depends(api_user)], status: str | None = None,
                   home: str | None = None) -> Any:
        with console.lock:
            alerts = [a for a in console.service.store.all() if user.sees(a)
                      and (status is None or a.status == status)
                      and (home is None or a.home == home)]
        return JSONResponse([a.to_json_obj() for a in alerts])

    @app.post("/api/v1/alerts/{alert_id}/ack")
    async def api_ack(request: Request, alert_id: str,
                      user: Annotated[User, Depends(api_user)]) -> Any:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        console.alert_for(user, alert_id)
        by = str(body.get("by") or user.name)
        note = body.get("note")
        with console.lock:
            console.service.acknowledge(alert_id, by, str(note) if note else None)
            console.users.audit(user.name, "acknowledge (api)", alert_id, by)
        console.touched()
        return JSONResponse({"id": alert_id, "acknowledged_by": by})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        if exc.status_code == 303:
            return RedirectResponse(exc.headers["Location"] if exc.headers else "/login",
                                    status_code=303)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                                headers=exc.headers)
        return templates.TemplateResponse(request, "error.html", {
            "csrf": csrf(request), "user": who(request), "detail": exc.detail},
            status_code=exc.status_code)

    return app


def serve(console: Console, host: str, port: int, stop: threading.Event | None = None) -> None:
    """Run the console with uvicorn until `stop` (or for ever)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(make_app(console), host=host, port=port,
                                           log_level="warning", access_log=False))
    if stop is not None:
        def stop_when_told() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=stop_when_told, daemon=True).start()
    server.run()
