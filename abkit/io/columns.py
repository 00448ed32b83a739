"""The column roles of an export: which config key and which command-line flag name
each one, so that a missing column's message says how to map it both ways.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from abkit.config import ExperimentSpec


@dataclass(frozen=True)
class Role:
    """A column role: its config section and key, its CLI flag and what it holds."""

    section: str
    key: str
    flag: str | None
    what: str
    # column names that usually hold this role in exports (for suggestions)
    aliases: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """How to map the role: the flag (when the CLI has one) and the TOML key."""
        toml = f"[{self.section}] {self.key}"
        return f"{self.flag} or {toml}" if self.flag else toml


ROLES: dict[str, Role] = {
    "unit": Role(
        "experiment",
        "unit",
        "--unit",
        "randomisation unit id",
        ("user", "userid", "uid", "user_uuid", "customer_id", "visitor_id", "id"),
    ),
    "variant": Role(
        "experiment",
        "variant",
        "--variant",
        "variant",
        ("group", "arm", "bucket", "variation", "treatment", "experiment_group", "cohort"),
    ),
    "account": Role(
        "experiment",
        "account",
        "--account",
        "account id",
        ("account", "org_id", "organization_id", "company_id", "tenant_id", "workspace_id"),
    ),
    "timestamp": Role(
        "input",
        "timestamp",
        "--timestamp",
        "event timestamp",
        ("ts", "time", "event_time", "event_timestamp", "created_at", "occurred_at", "datetime"),
    ),
    "event": Role(
        "input",
        "event",
        "--event",
        "event name",
        ("event_type", "event_name", "name", "action", "type", "event_kind"),
    ),
    "assigned_at": Role(
        "input",
        "assigned_at",
        "--assigned-at",
        "assignment timestamp",
        ("assigned", "assignment_time", "assigned_time", "enrolled_at", "exposure_time", "ts"),
    ),
    "session": Role(
        "input",
        "session",
        "--session",
        "session id",
        ("session", "sessionid", "session_key", "visit_id"),
    ),
    "value": Role("input", "value", "--value", "event value", ("amount", "score", "val")),
    "input_id": Role(
        "input",
        "input_id",
        "--input-id",
        "input id of a paired export",
        ("prompt_id", "request_id", "query_id", "input", "item_id"),
    ),
}


@dataclass(frozen=True)
class Need:
    """A column a table must have, with its role (for the message)."""

    column: str
    role: Role | None = None
    what: str = ""

    @property
    def description(self) -> str:
        return self.what or (self.role.what if self.role else "")


def need(spec: ExperimentSpec, role: str, what: str = "") -> Need:
    """The column ``spec`` maps ``role`` to, as a :class:`Need` naming its flag and key."""
    known = ROLES[role]
    section = spec.input if known.section == "input" else spec
    column = getattr(section, known.key)
    return Need(str(column), known, what)


def account_need(spec: ExperimentSpec, required: bool) -> Need:
    """The account id column, saying that B2B mode needs it when it does (``required``:
    accounts are the randomisation unit)."""
    if required:
        return need(spec, "account", "account id, which B2B mode needs")
    return need(spec, "account")


def guess(missing: Need, columns: list[str], taken: set[str]) -> str | None:
    """The column of ``columns`` that most likely holds ``missing``'s role, or None."""
    free = [c for c in columns if c not in taken]
    if not free:
        return None
    lower = {c.lower(): c for c in free}
    aliases = missing.role.aliases if missing.role else ()
    for alias in aliases:
        if alias in lower:
            return lower[alias]
    close = difflib.get_close_matches(missing.column.lower(), list(lower), n=1, cutoff=0.6)
    if close:
        return lower[close[0]]
    if missing.role is not None:
        stem = missing.role.key.split("_")[0]
        hits = [c for low, c in lower.items() if stem in low]
        if len(hits) == 1:
            return hits[0]
    return None


@dataclass(frozen=True)
class Missing:
    """The missing columns of one table: its label, the columns it has, and those it has
    for other roles (never suggested for a missing one)."""

    label: str
    needs: tuple[Need, ...]
    columns: tuple[str, ...]
    present: frozenset[str] = frozenset()


def missing_message(tables: list[Missing]) -> tuple[str, str]:
    """The problem and the hint for the missing columns of one or more tables: every
    column at once, each with its role, and the flag and config key that map it (with
    the look-alike column when there is one)."""
    problems: list[str] = []
    mapped: list[str] = []
    chosen: dict[Role, list[str]] = {}  # role → the look-alike column of each table
    for table in tables:
        parts = [
            f"'{n.column}'" + (f" ({n.description})" if n.description else "") for n in table.needs
        ]
        single = len(table.needs) == 1
        where = f"{'In' if problems else 'in'} {table.label}: " if len(tables) > 1 else ""
        problems.append(
            f"{where}required {'column' if single else 'columns'} {', '.join(parts)} "
            f"{'is' if single else 'are'} missing. Columns found: "
            f"{', '.join(table.columns) or '(none)'}."
        )
        taken = set(table.present)
        for n in table.needs:
            if n.role is None:
                continue
            found = guess(n, list(table.columns), taken)
            if found is None:
                mapped.append(f"'{n.column}' with {n.role.where}")
                continue
            taken.add(found)
            chosen.setdefault(n.role, [])
            if found not in chosen[n.role]:
                chosen[n.role].append(found)
    hints = []
    one = {role: names[0] for role, names in chosen.items() if len(names) == 1}
    flags = [f"{role.flag} {name}" for role, name in one.items() if role.flag]
    keys = [f"[{role.section}] {role.key} = '{name}'" for role, name in one.items()]
    if keys:
        them = "them" if len(keys) > 1 else "it"
        by_key = f"set {', '.join(keys)} in the config"
        hints.append(
            f"It looks like the export names {them} differently: "
            + (f"add {' '.join(flags)} (or {by_key})." if flags else f"{by_key}.")
        )
    for role, names in chosen.items():
        if len(names) > 1:
            hints.append(
                f"The {role.what} column has another name in each table "
                f"({', '.join(names)}); rename it so that both tables use one name, and "
                f"map that with {role.where}."
            )
    if mapped:
        hints.append(f"Map {'; '.join(mapped)}, or rename the column in the export.")
    if not any(n.role for t in tables for n in t.needs):
        hints.append(
            "Rename the column in the export or map it in the config ([experiment] "
            "unit/variant/account, [input] for the others)."
        )
    return " ".join(problems), " ".join(hints)


def near_names(name: str, names: Iterable[str]) -> list[str]:
    """The names of ``names`` that ``name`` is probably a misspelling of: up to three
    close matches, and any that differ only in case.

    Examples
    --------
    >>> near_names("shares", ["share", "ai_output", "Share"])
    ['share', 'Share']
    """
    ordered = sorted(set(names))
    close = difflib.get_close_matches(name, ordered, n=3, cutoff=0.6)
    return close + [n for n in ordered if n.lower() == name.lower() and n not in close]


def listed(names: Iterable[str], limit: int = 20) -> str:
    """Names for a message, quoted and sorted, the first ``limit`` of them.

    Examples
    --------
    >>> listed(["b", "a"]), listed(["c", "b", "a"], limit=2), listed([])
    ("'a', 'b'", "'a', 'b' and 1 more", '(none)')
    """
    ordered = sorted(set(names))
    shown = ", ".join(f"'{n}'" for n in ordered[:limit])
    more = f" and {len(ordered) - limit:,} more" if len(ordered) > limit else ""
    return (shown + more) or "(none)"
