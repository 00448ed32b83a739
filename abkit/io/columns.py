"""The column roles of an export: which config key and which command-line flag name
each one, so that a missing column's message says how to map it both ways.
"""

from __future__ import annotations

import difflib
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


def account_need(spec: ExperimentSpec) -> Need:
    """The account id column, saying that B2B mode needs it when it does."""
    if spec.mode == "b2b":
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


def missing_message(
    missing: list[Need],
    columns: list[str],
    present: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[str, str]:
    """The problem and the hint for ``missing`` columns of a table with ``columns``
    (``present``: the columns already required for other roles, never suggested)."""
    parts = []
    for n in missing:
        desc = f" ({n.description})" if n.description else ""
        parts.append(f"'{n.column}'{desc}")
    noun = "column" if len(missing) == 1 else "columns"
    problem = (
        f"required {noun} {', '.join(parts)} {'is' if len(missing) == 1 else 'are'} missing. "
        f"Columns found: {', '.join(columns) or '(none)'}."
    )
    taken = set(present)
    flags, keys, mapped = [], [], []
    for n in missing:
        if n.role is None:
            continue
        found = guess(n, columns, taken)
        if found is not None:
            taken.add(found)
            if n.role.flag:
                flags.append(f"{n.role.flag} {found}")
            keys.append(f"[{n.role.section}] {n.role.key} = '{found}'")
        else:
            mapped.append(f"'{n.column}' with {n.role.where}")
    hints = []
    them = "them" if len(flags or keys) > 1 else "it"
    if flags or keys:
        by_flag = f"add {' '.join(flags)}" if flags else ""
        by_key = f"set {', '.join(keys)} in the config"
        hints.append(
            f"It looks like the export names them differently: {by_flag} (or {by_key})."
            if by_flag
            else f"It looks like the export names {them} differently: {by_key}."
        )
    if mapped:
        hints.append(f"Map {'; '.join(mapped)}, or rename the column in the export.")
    if not any(n.role for n in missing):
        hints.append(
            "Rename the column in the export or map it in the config ([experiment] "
            "unit/variant/account, [input] for the others)."
        )
    return problem, " ".join(hints)
