"""Loading and checking the configuration directory (contract section 4).

Layout: `DIR/homes/{home}.yaml`, one file per home, and optionally `DIR/rules.yaml` with rule
settings for every home in that directory. Rule defaults are in each rule's own settings
class (the rule table is given by the caller: the core knows no rule by name); a home's own
plan (`rules:` in its file) overrides them for that home.

Everything is checked at load time, including references between parts (a file named for
one home describing another, two devices with one id, an override for a rule that does not
exist), and every problem is reported with its file and location, all at once.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from telecare.alert import SEVERITIES
from telecare.reading import KINDS, check_id
from telecare.sources import Source, check_sources, source_roots
from telecare.yamlcache import ParsedCache

ROLES = frozenset(
    {"front_door", "back_door", "kettle", "fridge", "microwave", "tv", "toilet", "bed", "chair",
     "pendant", "ok_button"}  # ok_button: the resident's own "I'm OK" button
)
# Where the shipped broker ACL (deploy/mosquitto/acl.example) lets each home's bridges write:
# `{base}/{home}/...`, under the home's own user.
ACL_BRIDGE_BASES = ("zigbee2mqtt", "ha", "hubs")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)\s*(d|h|m|s))", re.IGNORECASE)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class ConfigError(Exception):
    """One or more problems in the configuration; `problems` lists each with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("configuration problems:\n  " + "\n  ".join(problems))
        self.problems = problems


def parse_duration(raw: Any) -> timedelta:
    """'90s', '10m', '1h30m', '2d' or a number of seconds."""
    if isinstance(raw, timedelta):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return timedelta(seconds=raw)
    if isinstance(raw, str):
        text = raw.replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts).lower() == text.lower():
            return timedelta(seconds=sum(float(n) * _UNITS[u.lower()] for n, u in parts))
    raise ValueError(f"{raw!r} is not a duration like '90s', '10m', '1h30m' or '2d'")


def _positive(v: timedelta) -> timedelta:
    # A zero or negative threshold does not mean "never": it fires on every reading (a
    # negative inactivity limit once raised 842 alerts in five home-days).
    if not v > timedelta(0):
        raise ValueError(f"duration {v.total_seconds():g}s must be more than zero")
    return v


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]


def _parse_clock(raw: Any) -> time:
    if isinstance(raw, time):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        # YAML 1.1 reads an unquoted 07:00 as a base-60 integer (420): take it as minutes.
        return time(raw // 60 % 24, raw % 60)
    if isinstance(raw, str) and re.fullmatch(r"\d{1,2}:\d{2}", raw.strip()):
        hour, minute = (int(p) for p in raw.strip().split(":"))
        return time(hour % 24, minute)
    raise ValueError(f"{raw!r} is not a time of day like '07:30'")


ClockTime = Annotated[time, BeforeValidator(_parse_clock)]


def _check_severity(v: str) -> str:
    if v not in SEVERITIES:
        raise ValueError(f"severity {v!r} is not one of {', '.join(SEVERITIES)}")
    return v


Severity = Annotated[str, BeforeValidator(_check_severity)]


def _check_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {v!r} is not an IANA zone like Europe/London") from None
    return v


Zone = Annotated[str, AfterValidator(_check_zone)]  # an IANA time zone name


class _Strict(BaseModel):
    # allow_inf_nan=False: `below_c: .nan` would otherwise turn the cold-home rule off.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Window(_Strict):
    """A daily window in the resident's local time; may run past midnight."""

    start: ClockTime
    end: ClockTime


class RuleSettings(_Strict):
    """What every rule's settings have. Each rule module declares its own subclass, with its
    defaults in the fields (see `detect.rules`): the core knows no rule by name."""

    enabled: bool = True


RuleTable = Mapping[str, type[RuleSettings]]  # rule name -> its settings


class Rules:
    """A home's settings for every rule in the table, checked at load: `rules.inactivity`
    or `rules["inactivity"]`."""

    def __init__(self, by_name: dict[str, RuleSettings]) -> None:
        self._by_name = by_name

    def __getitem__(self, name: str) -> RuleSettings:
        return self._by_name[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_by_name"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)


class Device(BaseModel):
    # Unknown fields on a device are kept, not refused: gateways' own tooling may add some.
    model_config = ConfigDict(extra="allow", frozen=True)
    id: str
    kind: str
    room: str | None = None
    role: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        try:
            return check_id("device", v)
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"kind {v!r} is not in the vocabulary ({', '.join(sorted(KINDS))})")
        return v

    @field_validator("role")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        if v is not None and v not in ROLES:
            raise ValueError(f"role {v!r} is not one of {', '.join(sorted(ROLES))}")
        return v


CIRCLE_ROLES = ("family", "neighbour", "volunteer", "professional", "technical")


class Contact(_Strict):
    """One person (or team) in the resident's circle and how to reach them.

    Channels: `webhook`, `email`, `mqtt` (a topic, for a home hub or a responder's console)
    and `apprise` (Apprise URLs: SMS, push, chat). `hours` is when they can be reached, in
    their own `timezone` (the home's if not given); outside it, alerts below critical wait
    for the start of their hours, a critical one never waits. `min_severity`: the least
    severe alert they want to hear of. A `technical` contact hears only of device faults,
    and device faults go to nobody else."""

    name: str
    role: str = "family"
    webhook: str | None = None
    # Where the key that signs this contact's webhooks is: "env:NAME" (an environment
    # variable) or "file:/path" (a secrets file, as Docker and systemd credentials give).
    # Never the key itself: configuration files are read by more people than secrets are.
    webhook_secret: str | None = None
    email: str | None = None
    mqtt: str | None = None
    apprise: list[str] = Field(default_factory=list)
    timezone: Zone | None = None
    hours: Window | None = None
    min_severity: Severity = "info"

    @field_validator("webhook")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"https?://[^\s/]+", v):
            raise ValueError(f"webhook {v!r} must be an http:// or https:// URL")
        return v

    @property
    def reachable(self) -> bool:
        """Has any channel at all."""
        return bool(self.webhook or self.email or self.mqtt or self.apprise)

    @field_validator("webhook_secret")
    @classmethod
    def _secret_ref(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"env:[A-Za-z_][A-Za-z0-9_]*|file:/\S+", v):
            raise ValueError("webhook_secret must say where the key is: env:NAME or "
                             "file:/path (never the key itself)")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
            raise ValueError(f"email {v!r} is not an e-mail address")
        return v

    @field_validator("mqtt")
    @classmethod
    def _topic(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c in v for c in "#+\0")):
            raise ValueError(f"mqtt topic {v!r} must be a plain topic without wildcards")
        return v

    @field_validator("role")
    @classmethod
    def _circle_role(cls, v: str) -> str:
        if v not in CIRCLE_ROLES:
            raise ValueError(f"role {v!r} is not one of {', '.join(CIRCLE_ROLES)}")
        return v



class Escalation(_Strict):
    """The plan for who is told when. Contacts are asked in the order the home lists them:
    the first at once; if nobody has acknowledged within `ack_within`, the next as well, and
    so on. Everyone told so far is reminded on the `repeat` schedule (its last interval
    repeats) until someone acknowledges. A critical alert also goes to every professional
    responder at once."""

    ack_within: Duration = timedelta(minutes=10)
    escalate_from: Severity = "medium"  # below this, alerts are told once, not chased
    repeat: list[Duration] = Field(default_factory=lambda: [timedelta(minutes=5),
                                                            timedelta(minutes=15)])

    @field_validator("repeat")
    @classmethod
    def _repeat(cls, v: list[timedelta]) -> list[timedelta]:
        if any(d < timedelta(seconds=30) for d in v):
            raise ValueError("repeat intervals must be at least 30s")
        return v


class HomeConfig(BaseModel):
    # Unknown keys are refused: `contacs:` for `contacts:` would otherwise load and send a
    # critical alert to nobody. Keys starting `x-` are free for an installer's own notes.
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    home: str
    timezone: Zone
    devices: list[Device] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    # Without an escalation plan every contact hears of every alert at once (contract 4).
    escalation: Escalation | None = None
    rules: Rules  # checked against the rule table by `load_config`, which makes it
    # Bridges and hubs whose messages become this home's readings (`telecare.sources`).
    sources: list[Source] = Field(default_factory=list)

    @field_validator("home")
    @classmethod
    def _home(cls, v: str) -> str:
        try:
            return check_id("home", v)
        except ValueError as exc:
            raise ValueError(str(exc)) from None


    @model_validator(mode="after")
    def _references(self) -> HomeConfig:
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} is listed twice")
            seen.add(device.id)
        names = [c.name for c in self.contacts]
        if len(names) != len(set(names)):
            raise ValueError("two contacts have the same name")
        check_sources(self.sources, {d.id: d.kind for d in self.devices})
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def device(self, device_id: str) -> Device | None:
        for d in self.devices:
            if d.id == device_id:
                return d
        return None


def _merge(base: dict[str, Any], override: dict[str, Any], where: str,
           problems: list[str]) -> dict[str, Any]:
    """Override rule settings section by section; an unknown rule name is an exact error."""
    # (each rule's settings copied, not deep-copied: only that level is overridden here, and
    # a deep copy per home was a tenth of loading 10,000 homes)
    out = {rule: dict(settings) for rule, settings in base.items()}
    for rule, settings in override.items():
        if rule not in base:
            problems.append(f"{where}: rules.{rule}: no such rule (known: {', '.join(base)})")
            continue
        if not isinstance(settings, dict):
            problems.append(f"{where}: rules.{rule}: expected a mapping of settings")
            continue
        out[rule] = {**out[rule], **settings}
    return out


def _unknown_keys(data: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """Name each unknown top-level key of a home file, with the nearest known one; return
    the rest (keys starting `x-` are an installer's notes, dropped here)."""
    known = sorted(HomeConfig.model_fields)
    for key in data:
        if key in known or str(key).startswith("x-"):
            continue
        near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else f"known keys: {', '.join(known)}"
        problems.append(f"{where}: {key}: unknown key ({hint})")
    return {k: v for k, v in data.items() if k in known}


def _format_errors(where: str, exc: ValidationError, within: str = "") -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join([within] * bool(within) + [str(p) for p in err["loc"]])
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{where}: {loc}: {msg}" if loc else f"{where}: {msg}")
    return out


def default_home(home: str, rules: Rules) -> HomeConfig:
    """The profile used for readings from a home with no file: UTC, no devices, no contacts.
    Such readings are still stored and still checked, so a pendant press is never ignored."""
    return HomeConfig(home=home, timezone="UTC", rules=rules)


def check_rules(table: RuleTable, merged: dict[str, Any], where: str, prefix: str,
                problems: list[str], only: set[str] | None = None,
                shared: Rules | None = None) -> Rules | None:
    """Each rule's merged settings checked against its class (defaults from the fields);
    every problem named with its place, `prefix` before the rule's name. `only`: the rules a
    home overrides; the others are `shared`'s, checked once for the whole directory."""
    by_name: dict[str, RuleSettings] = {}
    for name, settings in table.items():
        if only is not None and shared is not None and name not in only:
            by_name[name] = shared[name]
            continue
        try:
            by_name[name] = settings.model_validate(merged.get(name, {}))
        except ValidationError as exc:
            problems.extend(_format_errors(where, exc, f"{prefix}{name}"))
    return Rules(by_name) if len(by_name) == len(table) else None


class Config:
    """A checked configuration directory. `warnings`: things that load but that a person
    should hear of at start-up (a home whose critical alerts would reach nobody). `rules`:
    the directory's rule settings, which a home with no file gets."""

    def __init__(self, root: Path, homes: dict[str, HomeConfig], rules: Rules,
                 warnings: list[str] | None = None) -> None:
        self.root = root
        self.homes = homes
        self.rules = rules
        self.warnings = warnings or []

    def known(self, home: str) -> bool:
        return home in self.homes

    def home(self, home: str) -> HomeConfig:
        found = self.homes.get(home)
        if found is None:
            found = default_home(home, self.rules)
            self.homes[home] = found
        return found


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, problems: list[str], cache: ParsedCache | None = None) -> Any:
    try:
        raw = path.read_bytes()
        if cache is not None:
            found, document = cache.get(path.name, raw)
            if found:
                return document
        # libyaml's loader where installed: the pure-Python one took 16 s for 2,000 homes,
        # and each process of `telecare run` reads them all at start.
        document = yaml.load(raw.decode("utf-8"), Loader=_SAFE_LOADER)  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(f"{path}: cannot read: {exc}".splitlines()[0])
        return None
    if cache is not None:
        cache.put(path.name, raw, document)
    return document


def load_config(root: str | Path, table: RuleTable) -> Config:
    """Load and check a configuration directory; `table`: every rule and its settings (the
    rules' own defaults, then the directory's rules.yaml, then each home's plan)."""
    root = Path(root)
    problems: list[str] = []
    if not root.is_dir():
        raise ConfigError([f"{root}: not a directory"])
    rules: dict[str, Any] = {name: {} for name in table}
    rules_file = root / "rules.yaml"
    if rules_file.exists():
        data = _read_yaml(rules_file, problems)
        if isinstance(data, dict):
            rules = _merge(rules, data, str(rules_file), problems)
        elif data is not None:
            problems.append(f"{rules_file}: expected a mapping of rule settings")
    # The merged settings are checked as they stand, not only through the home files that
    # override them: a home with no file, or a new one, gets them as they are.
    shared = check_rules(table, rules, str(rules_file), "", problems)
    # A mistake in rules.yaml is named once, there, not again in every home file.
    in_shared = {p.split(": ", 1)[1] for p in problems if p.startswith(str(rules_file))}
    homes: dict[str, HomeConfig] = {}
    home_dir = root / "homes"
    # (sorted by name: comparing Path objects took a tenth of a second for 10,000 homes)
    files = sorted([*home_dir.glob("*.yaml"), *home_dir.glob("*.yml")],
                   key=lambda p: p.name) if home_dir.is_dir() else []
    stray = [] if home_dir.is_dir() else sorted(
        p.name for p in [*root.glob("*.yaml"), *root.glob("*.yml")] if p.name != "rules.yaml")
    if stray:
        # The homes folder itself given as the configuration: every reading would be taken
        # for a home with no file (UTC, no devices), silently, so it is refused instead.
        problems.append(f"{root}: has {', '.join(stray[:3])}{' ...' * (len(stray) > 3)} but "
                        f"no homes/ folder; give the configuration directory, the one that "
                        f"holds homes/ (home files belong in {home_dir})")
    parsed = ParsedCache(home_dir)
    for path in files:
        data = _read_yaml(path, problems, parsed)
        if not isinstance(data, dict):
            if data is not None or path.stat().st_size == 0:
                problems.append(f"{path}: expected a mapping with home, timezone and devices")
            continue
        own_rules = data.get("rules") or {}
        if not isinstance(own_rules, dict):
            problems.append(f"{path}: rules: expected a mapping of rule settings")
            own_rules = {}
        own: Rules | None
        if shared is not None and not own_rules:
            own = shared  # the directory's settings as they are, already checked
        else:
            merged = _merge(rules, own_rules, str(path), problems)
            found: list[str] = []
            own = check_rules(table, merged, str(path), "rules.", found,
                              only=set(own_rules) if shared is not None else None,
                              shared=shared)
            problems.extend(p for p in found
                            if p.split(": ", 1)[1].removeprefix("rules.") not in in_shared)
        data = _unknown_keys(data, str(path), problems)
        try:
            home = HomeConfig.model_validate({**data, "rules": own or Rules({})})
        except ValidationError as exc:
            problems.extend(_format_errors(str(path), exc))
            continue
        if own is None:
            continue
        if home.home != path.stem:
            problems.append(
                f"{path}: home {home.home!r} does not match the file name {path.stem!r}")
        elif home.home in homes:
            problems.append(f"{path}: home {home.home!r} is described twice")
        else:
            homes[home.home] = home
    parsed.save()
    _check_source_topics(homes, problems)
    if problems or shared is None:
        raise ConfigError(problems)
    warnings = [w for h in homes.values() for w in _warnings(h)]
    alone = sorted(h.home for h in homes.values() if not h.contacts)
    if alone:
        shown = ", ".join(alone[:5]) + (f" and {len(alone) - 5} more" if len(alone) > 5 else "")
        warnings.append(f"{len(alone)} home(s) name no contact, so their alerts are recorded "
                        f"but told to nobody: {shown}")
    return Config(root, homes, shared, warnings)


def _check_source_topics(homes: dict[str, HomeConfig], problems: list[str]) -> None:
    """A bridge's topics belong to one home: two homes claiming the same base (or one under
    the other's) would each take the other's readings. By ancestors, not by pairs: a council
    has thousands of homes."""
    exact: dict[str, tuple[str, str]] = {}  # every topic a source owns -> (home, where)
    trees: dict[str, tuple[str, str]] = {}  # the bases owned with all below them
    above: dict[str, tuple[str, str]] = {}  # every proper ancestor of an owned topic
    for home in homes.values():
        for i, source in enumerate(home.sources):
            where = f"homes/{home.home}.yaml: sources.{i}"
            for topic, tree in source_roots(source):
                parts = topic.split("/")
                ancestors = ["/".join(parts[:k]) for k in range(1, len(parts))]
                clash = [exact.get(topic)] + [trees.get(a) for a in ancestors] + \
                    ([above.get(topic)] if tree else [])
                for found in clash:
                    if found is not None and found[0] != home.home:
                        problems.append(f"{where}: topic {topic!r} overlaps one of home "
                                        f"{found[0]!r} ({found[1]}): each bridge needs a base "
                                        "topic of its own")
                        break
                exact[topic] = (home.home, f"sources.{i}")
                if tree:
                    trees[topic] = exact[topic]
                for a in ancestors:
                    above.setdefault(a, exact[topic])


def read_secret(ref: str) -> str:
    """The secret that `ref` ("env:NAME" or "file:/path") points at; ValueError naming the
    place (never the secret) if it is not there."""
    kind, _, where = ref.partition(":")
    if kind == "env":
        value = os.environ.get(where, "")
        if not value:
            raise ValueError(f"webhook secret: environment variable {where} is not set")
        return value.strip()
    try:
        value = Path(where).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"webhook secret: cannot read {where} ({exc.strerror})") from None
    if not value:
        raise ValueError(f"webhook secret: {where} is empty")
    return value


def _warnings(home: HomeConfig) -> list[str]:
    """What loads but would surprise the people relying on it. No names: these are logged."""
    where = f"homes/{home.home}.yaml"
    out = []
    for i, c in enumerate(home.contacts):
        if not c.reachable:
            out.append(f"{where}: contacts.{i}: has no webhook, email, mqtt or apprise: "
                       "nothing can reach them")
        host = urlsplit(c.webhook).hostname if c.webhook else None
        if c.webhook and c.webhook.startswith("http://") and host not in LOOPBACK:
            out.append(f"{where}: contacts.{i}: webhook is plain http:// to another machine: "
                       "alerts would cross the network unencrypted (use https://)")
        if c.webhook_secret:
            try:
                read_secret(c.webhook_secret)
            except ValueError as exc:
                out.append(f"{where}: contacts.{i}: {exc}: its webhooks cannot be signed "
                           "and will fail")
    conventional = tuple(f"{base}/{home.home}" for base in ACL_BRIDGE_BASES)
    for i, source in enumerate(home.sources):
        for topic, _ in source_roots(source):
            if not (topic in conventional or topic.startswith(tuple(f"{c}/" for c in
                                                                    conventional))):
                out.append(f"{where}: sources.{i}: topic {topic!r} is outside the per-home "
                           f"patterns of the shipped broker ACL ({', '.join(conventional)}):"
                           " give this bridge's user an ACL line of its own")
                break
    if home.contacts and not any(c.reachable and c.role != "technical"
                                 for c in home.contacts):
        out.append(f"{where}: no contact outside the technical team can be reached: a "
                   "critical alert (a pendant press) would reach nobody")
    return out
