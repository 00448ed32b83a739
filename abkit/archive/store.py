"""An append-only archive of experiment results, one Parquet file per append.

An archive is a folder (or, for reading, a URL Polars can read: ``s3://bucket/archive``,
``https://host/archive.parquet``) of Parquet files with the columns of
:mod:`abkit.archive.schema`.  Appending never rewrites a file: the rows are written to a
hidden temporary file in the folder and renamed into place (``os.replace``, atomic on
one file system), under a name made of the time, the process id and a random part, so
two processes appending at the same time both keep every row and a reader never sees a
half-written file.  Reading checks every file against the schema and names the file
that is corrupt or foreign.

The same experiment added twice is kept twice (nothing is rewritten); readers that
learn from the archive (:meth:`Archive.latest`, :meth:`Archive.prior`) keep the latest
row of each experiment × metric × variant.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from abkit.archive.schema import METADATA_KEY, SCHEMA, SCHEMA_VERSION, schema_problem
from abkit.errors import AbkitInputError
from abkit.stats.distributions import norm_ppf
from abkit.stats.empirical_bayes import MIN_EXPERIMENTS, Family, FittedPrior, Method, fit_prior

if TYPE_CHECKING:
    from abkit.result import AnalysisResult

KEY = ("experiment", "metric", "variant")
# the names of analyses without one of their own (abkit.run.export_name's fallback)
UNNAMED = ("", "A/B result")


def config_hash(result: AnalysisResult) -> str:
    """16 hex digits of the SHA-256 of the experiment's settings and its metrics (name,
    type, test): equal for two analyses of one experiment with one configuration.

    Parameters
    ----------
    result : AnalysisResult
        The analysis.

    Returns
    -------
    str
    """
    settings = result.to_dict()["experiment"]
    metrics = sorted({(r.metric, r.metric_type, r.method) for r in result.results})
    text = json.dumps({"experiment": settings, "metrics": metrics}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _se_from_interval(low: float, high: float, alpha: float) -> float:
    z = float(norm_ppf(1.0 - alpha / 2.0))
    width = high - low
    return width / (2.0 * z) if math.isfinite(width) and width > 0 else math.nan


def rows_from_result(result: AnalysisResult, added_at: datetime | None = None) -> pl.DataFrame:
    """The archive's rows of one analysis: one per metric × treatment.

    Standard errors are read back from the fixed-horizon intervals, se = width/(2 z_{1−α/2})
    (the effect's interval, and the lift's on the log scale, log(1 + high) − log(1 + low));
    a Bayesian reading, when present, supplies its own estimate and standard error.

    Parameters
    ----------
    result : AnalysisResult
        The analysis (:func:`abkit.analyze`, or a results.json read back).
    added_at : datetime or None
        The time of the append (now, in UTC, by default).

    Returns
    -------
    polars.DataFrame
        With exactly :data:`abkit.archive.schema.SCHEMA`.

    Examples
    --------
    >>> import numpy as np, polars as pl, abkit
    >>> from abkit.archive.store import rows_from_result
    >>> from abkit.archive.schema import SCHEMA
    >>> rng = np.random.default_rng(7)
    >>> units = pl.DataFrame({"user_id": range(400), "variant": ["control", "v2"] * 200,
    ...                       "converted": (rng.random(400) < 0.3).astype(int)})
    >>> rows = rows_from_result(abkit.analyze(units))
    >>> dict(rows.schema) == SCHEMA, rows["metric"].to_list()
    (True, ['converted'])
    """
    from abkit import __version__

    when = (added_at or datetime.now(UTC)).astimezone(UTC)
    digest = config_hash(result)
    rows = []
    for r in result.results:
        lift_low, lift_high = r.relative_ci
        log_ratio = math.log1p(r.relative_effect) if r.relative_effect > -1 else math.nan
        log_se = (
            _se_from_interval(math.log1p(lift_low), math.log1p(lift_high), result.alpha)
            if lift_low > -1 and math.isfinite(lift_high)
            else math.nan
        )
        bayes = getattr(r, "bayesian", None)
        if bayes is not None and bayes.data_scale == "log":
            log_ratio, log_se = bayes.data_estimate, bayes.data_se
        rows.append(
            {
                "experiment": result.name,
                "config_hash": digest,
                "added_at": when,
                "export_end": result.export_end,
                "metric": r.metric,
                "metric_type": r.metric_type,
                "variant": r.variant,
                "control": result.control,
                "direction": r.direction,
                "method": r.method,
                "control_n": r.control_n,
                "treatment_n": r.treatment_n,
                "control_value": r.control_value,
                "treatment_value": r.treatment_value,
                "effect": r.effect,
                "effect_se": _se_from_interval(*r.ci, result.alpha),
                "lift": r.relative_effect,
                "log_ratio": log_ratio,
                "log_ratio_se": log_se,
                "p_value": r.p_value,
                "decision": r.decision.outcome,
                "decision_basis": r.decision.basis,
                "bayes_decision": bayes.decision.outcome if bayes is not None else None,
                "chance_to_win": bayes.relative.chance_to_win if bayes is not None else None,
                "abkit_version": __version__,
            }
        )
    return pl.DataFrame(rows, schema=SCHEMA)


@dataclass(frozen=True)
class Archive:
    """An experiment archive at a folder (appending and reading) or a URL (reading).

    Parameters
    ----------
    location : str or os.PathLike
        A folder, created on the first append; or a URL Polars can read (``s3://``,
        ``gs://``, ``az://``, ``https://``), read only.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np, polars as pl, abkit
    >>> from abkit.archive import Archive
    >>> rng = np.random.default_rng(7)
    >>> units = pl.DataFrame({"user_id": range(400), "variant": ["control", "v2"] * 200,
    ...                       "converted": (rng.random(400) < 0.3).astype(int)})
    >>> archive = Archive(tempfile.mkdtemp())
    >>> _ = archive.add(abkit.analyze(units, title="signup-button"))
    >>> archive.read().height
    1
    >>> archive.experiments()["experiment"].to_list()
    ['signup-button']
    """

    location: str

    def __init__(self, location: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "location", os.fspath(location))

    @property
    def is_url(self) -> bool:
        """True for a URL (read only); a ``file://`` URL counts as a folder."""
        return "://" in self.location and not self.location.startswith("file://")

    @property
    def path(self) -> Path:
        """The archive's folder."""
        return Path(self.location.removeprefix("file://"))

    def append(self, rows: pl.DataFrame) -> Path:
        """Append rows with the archive's schema as one new file (atomic rename).

        Parameters
        ----------
        rows : polars.DataFrame
            Rows with exactly :data:`abkit.archive.schema.SCHEMA`.

        Returns
        -------
        pathlib.Path
            The new file.
        """
        if self.is_url:
            raise AbkitInputError(
                "an archive at a URL can be read but not appended to.",
                source=self.location,
                hint="Append to a folder (a path) and publish or sync that folder.",
            )
        problem = schema_problem(dict(rows.schema))
        if problem is not None:
            raise ValueError(f"rows for the archive do not match its schema: {problem}")
        folder = self.path
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"part-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.parquet"
        tmp = folder / f".{name}.tmp"
        rows.write_parquet(tmp, metadata={METADATA_KEY: SCHEMA_VERSION})
        os.replace(tmp, folder / name)
        return folder / name

    def add(self, result: AnalysisResult, added_at: datetime | None = None) -> Path:
        """Append one analysis (:func:`rows_from_result`).

        Parameters
        ----------
        result : AnalysisResult
            The analysis.
        added_at : datetime or None
            The time of the append (now by default).

        Returns
        -------
        pathlib.Path
            The new file.

        Raises
        ------
        AbkitInputError
            When the analysis has no name of its own: the archive tells experiments
            apart by name, and every unnamed analysis is called "A/B result".
        """
        if result.name in UNNAMED:
            raise AbkitInputError(
                f"this analysis has no name of its own ('{result.name}'), and the archive "
                "tells experiments apart by name: every unnamed analysis would be taken for "
                "the same experiment, each replacing the last.",
                source=self.location,
                hint="Name the experiment ([experiment] name in the config, or title= in "
                "abkit.analyze) before adding it.",
            )
        return self.append(rows_from_result(result, added_at))

    def files(self) -> list[Path]:
        """The archive's Parquet files, in name (time) order; hidden temporary files of
        appends in progress are left out."""
        folder = self.path
        if not folder.is_dir():
            raise AbkitInputError(
                "there is no archive folder here.",
                source=str(folder),
                hint="Create one with 'abkit archive add results.json --archive PATH' "
                "or 'abkit analyze ... --archive PATH'.",
            )
        return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))

    def read(self) -> pl.DataFrame:
        """Every row of every file, each file checked against the schema.

        Returns
        -------
        polars.DataFrame
            With :data:`abkit.archive.schema.SCHEMA` (no rows for an empty archive).

        Raises
        ------
        AbkitInputError
            Naming a file that is not a readable Parquet file or not an abkit archive
            file of this schema version.
        """
        if self.is_url:
            return self._read_url()
        frames = [_read_file(p) for p in self.files()]
        if not frames:
            return pl.DataFrame(schema=SCHEMA)
        return pl.concat(frames, how="vertical")

    def _read_url(self) -> pl.DataFrame:
        url = self.location
        if url.startswith(("http://", "https://")):
            # one archive file over HTTP, fetched whole (plain web servers do not serve
            # the byte ranges Polars' cloud reader asks for), then checked as a file is
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    data = response.read()
            except (OSError, ValueError) as exc:
                raise AbkitInputError(
                    f"the archive could not be fetched ({type(exc).__name__}: {exc}).",
                    source=url,
                    hint="Check the URL; over HTTP an archive is read one file at a time.",
                ) from None
            return _read_file(io.BytesIO(data), url)
        target = url if url.endswith(".parquet") else url.rstrip("/") + "/*.parquet"
        try:
            frame = pl.read_parquet(target)
        except Exception as exc:
            raise AbkitInputError(
                f"the archive could not be read ({type(exc).__name__}: {exc}).",
                source=url,
                hint="Check the URL, its credentials and that it holds abkit archive files.",
            ) from None
        problem = schema_problem(dict(frame.schema))
        if problem is not None:
            raise AbkitInputError(
                f"this is not an abkit archive: {problem}.",
                source=url,
                hint="Point --archive at a folder written by 'abkit archive add'.",
            )
        return frame

    def latest(self) -> pl.DataFrame:
        """The latest row of each experiment × metric × variant (an experiment added
        again replaces its earlier rows here, not on disk)."""
        rows = self.read()
        return rows.sort("added_at").unique(subset=list(KEY), keep="last", maintain_order=True)

    def experiments(self) -> pl.DataFrame:
        """One row per experiment: when it was last added, its export's end, its metrics,
        treatments and configuration hash."""
        rows = self.latest()
        return (
            rows.group_by("experiment", maintain_order=True)
            .agg(
                pl.col("added_at").max(),
                pl.col("export_end").last(),
                pl.col("config_hash").last(),
                pl.col("metric").n_unique().alias("metrics"),
                pl.col("variant").n_unique().alias("treatments"),
            )
            .sort("added_at")
        )

    def history(self, metric: str) -> pl.DataFrame:
        """One metric's past results (latest per experiment × variant), oldest first."""
        return self.latest().filter(pl.col("metric") == metric).sort("added_at")

    def prior(
        self,
        metric: str,
        method: Method = "reml",
        family: Family = "normal",
        minimum: int = MIN_EXPERIMENTS,
        exclude: str | None = None,
    ) -> FittedPrior:
        """The prior of the metric's log ratio fitted to its past results
        (:func:`abkit.stats.empirical_bayes.fit_prior`).

        Parameters
        ----------
        metric : str
            The metric's name.
        method, family, minimum
            As :func:`~abkit.stats.empirical_bayes.fit_prior`.
        exclude : str or None
            An experiment to leave out (the one being analysed, if already added).

        Notes
        -----
        Each past experiment counts once: with several treatments, the one whose log
        ratio is the most precise (their lifts share one control, so they are not
        independent draws of the between-experiment distribution).

        Returns
        -------
        FittedPrior
        """
        rows = self.history(metric)
        if exclude is not None:
            rows = rows.filter(pl.col("experiment") != exclude)
        # one result per experiment: several treatments share their control, so their
        # lifts are not independent draws; the most precise one stands for it
        rows = (
            rows.filter(pl.col("log_ratio_se").is_finite())
            .sort("log_ratio_se")
            .unique(subset=["experiment"], keep="first", maintain_order=True)
            .sort("added_at")
        )
        return fit_prior(
            rows["log_ratio"].to_numpy(),
            rows["log_ratio_se"].to_numpy(),
            method=method,
            family=family,
            minimum=minimum,
        )


def _read_file(path: Path | io.BytesIO, name: str | None = None) -> pl.DataFrame:
    """One archive file, checked; errors name the file and what to do."""
    where = name or str(path)
    hint = (
        "Archive files are written only by abkit; move this file out of the archive "
        "folder (or restore it from a backup) and run again."
    )
    try:
        meta = pl.read_parquet_metadata(path)
        if isinstance(path, io.BytesIO):
            path.seek(0)
        frame = pl.read_parquet(path)
    except Exception as exc:
        raise AbkitInputError(
            f"this archive file is not a readable Parquet file ({type(exc).__name__}); it "
            "may be truncated or damaged.",
            source=where,
            hint=hint,
        ) from None
    version = meta.get(METADATA_KEY)
    problem = schema_problem(dict(frame.schema))
    if version is None or problem is not None:
        why = problem or "it carries no abkit archive marker"
        raise AbkitInputError(
            f"this file in the archive folder was not written by abkit's archive: {why}.",
            source=where,
            hint=hint,
        )
    if version != SCHEMA_VERSION:
        raise AbkitInputError(
            f"this archive file has schema version {version}; this abkit reads version "
            f"{SCHEMA_VERSION}.",
            source=where,
            hint="Upgrade abkit to read it.",
        )
    return frame
