"""`abkit` command: a thin click layer over the public :mod:`abkit` API.

User errors (bad input or configuration) print one paragraph and exit with
code 2; a Ctrl-C, whether Python or an engine (DuckDB, Spark) reports it, cancels the
engine's work, prints one line and exits with code 130.  Nothing here holds analysis
logic.  Heavy modules are imported inside the commands so that ``abkit --help``
starts fast.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import click

from abkit.options import Engine, InputKind, Mode, SequentialMethod, choices

EXIT_USER_ERROR = 2


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn abkit's input errors into a message and exit code 2, never a traceback; an
    engine's error that stands for a Ctrl-C goes on as :class:`KeyboardInterrupt`, for
    the group to report (:class:`_Abkit`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from abkit.errors import AbkitInputError
        from abkit.interrupt import is_interrupt

        try:
            return func(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except Exception as exc:
            if is_interrupt(exc):  # DuckDB's "Query interrupted", a cancelled Spark job
                raise KeyboardInterrupt from exc
            if isinstance(exc, AbkitInputError):
                click.echo(f"abkit: error: {exc}", err=True)
                sys.exit(EXIT_USER_ERROR)
            if os.environ.get("ABKIT_DEBUG"):
                raise
            click.echo(
                f"abkit: internal error ({type(exc).__name__}: {exc}). This is a bug in abkit; "
                "please report it with ABKIT_DEBUG=1 set to show the traceback.",
                err=True,
            )
            sys.exit(1)

    return wrapper


# the export's column names (and the control's name), shared by analyze and power
_COLUMN_OPTIONS = (
    click.option("--control", help="Name of the control variant (overrides [experiment] control)."),
    click.option("--unit", help="Unit id column (overrides [experiment] unit; default user_id)."),
    click.option(
        "--variant", help="Variant column (overrides [experiment] variant; default variant)."
    ),
    click.option(
        "--account",
        help="Account id column for B2B mode (overrides [experiment] account; default account_id).",
    ),
    click.option("--event", help="Event name column (overrides [input] event; default event)."),
    click.option(
        "--timestamp",
        help="Event timestamp column (overrides [input] timestamp; default timestamp).",
    ),
    click.option(
        "--assigned-at",
        help="Assignment timestamp column of the assignments table (overrides [input] "
        "assigned_at; default assigned_at).",
    ),
    click.option(
        "--session", help="Session id column (overrides [input] session; default session_id)."
    ),
    click.option("--value", help="Event value column (overrides [input] value; default value)."),
    click.option(
        "--exposure-event",
        help="Event that marks exposure; a single events table takes each unit's first one as "
        "its assignment time (overrides [input] exposure_event).",
    ),
    click.option(
        "--export-end",
        help="When the export ends, e.g. 2025-03-31T23:59:59Z (overrides [input] export_end; "
        "default: the last event).",
    ),
    click.option(
        "--input-id",
        help="Input id column of a paired (shadow / replay) export (overrides [input] input_id).",
    ),
    click.option(
        "--latency",
        help="Latency column of the AI output events (overrides [input] latency; default "
        "latency_ms).",
    ),
    click.option(
        "--ttft",
        help="Time-to-first-token column of the AI output events (overrides [input] ttft; "
        "default ttft_ms).",
    ),
    click.option(
        "--input-tokens",
        help="Input token count column (overrides [input] input_tokens; default input_tokens).",
    ),
    click.option(
        "--output-tokens",
        help="Output token count column (overrides [input] output_tokens; default output_tokens).",
    ),
    click.option(
        "--timestamp-format",
        help="strptime format of text timestamps, e.g. '%m/%d/%Y %H:%M' (overrides [input] "
        "timestamp_format; default: ISO 8601 forms and Unix epochs).",
    ),
)


def _column_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options that map an export's own column names: --control, --unit, --variant,
    --account and one per [input] key of an event export (--event, --timestamp, ...)."""
    for option in reversed(_COLUMN_OPTIONS):
        command = option(command)
    return command


class _Abkit(click.Group):
    """The ``abkit`` group: a Ctrl-C anywhere in a command cancels the engine's jobs,
    prints one line and exits with code 130 (click's own handling prints "Aborted!"
    and exits with 1), without a traceback unless ABKIT_DEBUG is set."""

    def invoke(self, ctx: click.Context) -> Any:
        from abkit import interrupt

        with interrupt.watching():
            try:
                return super().invoke(ctx)
            except KeyboardInterrupt:
                interrupt.stopped()
                if os.environ.get("ABKIT_DEBUG"):
                    import traceback

                    traceback.print_exc()
                click.echo(f"abkit: {interrupt.MESSAGE}", err=True)
                sys.exit(interrupt.EXIT_STATUS)


@click.group(cls=_Abkit, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="abkit")
def cli() -> None:
    """abkit: did the new prompt, model or setting actually help?"""


REPORT_FORMATS = ("text", "json", "markdown", "html")
# the format an -o file's suffix implies when --format is not given
_SUFFIX_FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".html": "html",
    ".htm": "html",
}


def _report_format(fmt: str | None, output: str | None) -> str:
    """--format if given, else the one the -o file's suffix implies, else text."""
    if fmt is not None:
        return fmt
    suffix = Path(output).suffix.lower() if output else ""
    return _SUFFIX_FORMATS.get(suffix, "text")


def _render(result: Any, fmt: str, output: str | None, width: int | None = None) -> str:
    """The report in ``fmt``; text fits ``width`` columns if given, else the terminal
    when it goes to one (no limit when it is piped or written to a file)."""
    from abkit import progress

    if fmt == "text":
        # fit the width: a wide table when it fits, one block per result otherwise
        if width is None and sys.stdout.isatty() and not output:
            width = shutil.get_terminal_size().columns
        return str(result.to_text(width))
    if fmt == "html":
        progress.step("drawing the plots for the HTML report")
        return str(result.to_html_page())
    return str(result.to_json() if fmt == "json" else result.to_markdown())


@cli.command()
@click.argument("data")
@click.argument("events", required=False)
@click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    help="Experiment spec (TOML). Without it, documented defaults apply.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default=None,
    help="Output format (default: from the -o file's suffix, .md / .json / .html, else text).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress on standard error (it shows only when standard error is a terminal).",
)
@click.option(
    "--kind",
    type=click.Choice(choices(InputKind)),
    default=None,
    help="What DATA is when EVENTS is not given (default: detect from the columns).",
)
@click.option(
    "--mode",
    type=click.Choice(choices(Mode)),
    default=None,
    help="b2b: randomised by account; inference resamples accounts (overrides [experiment] "
    "mode; the account column is account_id unless --account names another).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Also write report.md, report.html, results.json and plots/*.png into this folder "
    "(files an earlier run wrote there are replaced; nothing else is touched).",
)
@click.option(
    "--accounts",
    "accounts_table",
    type=click.Path(),
    help="Accounts table (account id, arr_start, arr_end) for net revenue retention metrics.",
)
@click.option(
    "--sequential",
    type=click.Choice(choices(SequentialMethod)),
    default=None,
    help="Also monitor every metric over daily looks with an always-valid method "
    "(overrides [sequential] method).",
)
@_column_options
@click.option(
    "--engine",
    type=click.Choice(choices(Engine)),
    default="polars",
    show_default=True,
    help="Read the events with this engine and reduce them there; only per-arm "
    "aggregates come back (duckdb, a local Spark session, or ibis over DuckDB; "
    'pip install "abkit[duckdb]" / "abkit[spark]" / "abkit[ibis]").',
)
@click.option(
    "--segment",
    "segments",
    multiple=True,
    help="Also report the effects by segment of this column (repeatable): a unit "
    "attribute fixed at assignment, such as country or platform.",
)
@click.option(
    "--bayesian",
    is_flag=True,
    help="Also give every metric a Bayesian reading (posterior, chance to win, expected "
    "loss and a decision of its own), as a [bayesian] section does.",
)
@click.option(
    "--archive",
    "archive_path",
    type=click.Path(file_okay=False),
    help="Append this experiment's results to the experiment archive at PATH (a folder); "
    "with --bayesian, the metrics' priors are also learnt from its past experiments.",
)
@click.option(
    "--surrogate-training",
    type=click.Path(dir_okay=False),
    help="A past experiment's per-unit table (first-week signals and long-run retention; "
    "abkit surrogate-training writes it) to train the surrogate forecast of D30 on "
    "(overrides [surrogate] training; default: the control arm's matured units).",
)
@click.option(
    "--width",
    type=click.IntRange(min=40),
    default=None,
    help="Fit the text report to this many columns, e.g. 80 for a log or a pull "
    "request (default: the terminal's width; no limit when piped or written to a file).",
)
@_user_errors
def analyze(
    data: str,
    events: str | None,
    config: str | None,
    fmt: str | None,
    output: str | None,
    quiet: bool,
    kind: str | None,
    sequential: str | None,
    mode: str | None,
    accounts_table: str | None,
    out_dir: str | None,
    control: str | None,
    unit: str | None,
    variant: str | None,
    account: str | None,
    engine: Engine,
    segments: tuple[str, ...],
    bayesian: bool,
    archive_path: str | None,
    surrogate_training: str | None,
    width: int | None,
    **columns: str | None,
) -> None:
    """Analyse an experiment export.

    DATA is an assignments table when EVENTS is given; otherwise a single events table
    carrying the variant, a unit-level table or a summary table. Each may be a CSV,
    TSV, Parquet or NDJSON file (plain or .gz / .zst compressed), a glob, a folder, or -
    for standard input. Map the export's own column names with --unit, --variant,
    --event, --timestamp, --assigned-at, ... (no config needed).
    """
    import abkit
    from abkit import interrupt, progress
    from abkit.run import export_name

    fmt = _report_format(fmt, output)
    quiet = quiet or (fmt == "json" and not output)
    with progress.reporting(enabled=not quiet):
        progress.step("reading the export")
        events_data = abkit.read_on(engine, events) if events is not None else None
        main_data = abkit.read_on(engine, data) if events is None and engine != "polars" else data
        if engine == "spark":  # the session may have just started, with a SIGINT handler
            interrupt.claim_sigint()
        result = abkit.analyze(
            main_data,
            config,
            events=events_data,
            kind=kind,
            sequential=sequential,
            mode=mode,
            accounts=accounts_table,
            control=control,
            unit=unit,
            variant=variant,
            account=account,
            segments=segments,
            title=export_name(events if events is not None else data),
            bayesian=bayesian,
            archive=archive_path if bayesian else None,
            surrogate_training=surrogate_training,
            **columns,
        )
        if archive_path:
            from abkit.archive import Archive

            progress.step("adding the results to the archive")
            added = Archive(archive_path).add(result)
        if out_dir:
            progress.step("drawing the plots")
            written = result.save(out_dir)
        if out_dir and fmt == "html":  # the same page, its plots already drawn once
            text = Path(written["html"]).read_text(encoding="utf-8")
        else:
            text = _render(result, fmt, output, width)
    if archive_path:
        click.echo(f"added {len(result.results)} result(s) to the archive: {added}", err=True)
    if out_dir:
        click.echo(
            f"wrote {written['report']}, {written['html']}, {written['results']} and "
            f"{len(written['plots'])} plot(s)",
            err=True,
        )
    if output:
        from abkit.errors import AbkitInputError

        try:
            Path(output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise AbkitInputError(
                f"cannot write the report to '{output}': {exc.strerror or exc}. Check that its "
                "folder exists and is writable (abkit does not create folders for -o; --out "
                "does)."
            ) from None
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


@cli.command()
@click.argument("results", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder for report.md, report.html, results.json and plots/*.png (files an earlier "
    "run wrote there are replaced; nothing else is touched).",
)
@_user_errors
def report(results: str, out_dir: str) -> None:
    """Redraw report.md, report.html and the plots from a saved results.json (no export
    needed)."""
    import json

    from abkit.api import AnalysisResult
    from abkit.errors import AbkitInputError

    try:
        d = json.loads(Path(results).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AbkitInputError(f"cannot read results JSON: {exc}", source=results) from None
    if not isinstance(d, dict) or "results" not in d or "experiment" not in d:
        raise AbkitInputError(
            "this is not an abkit results.json (no 'experiment' or 'results' key).", source=results
        )
    try:
        result = AnalysisResult.from_dict(d)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise AbkitInputError(
            f"this results.json does not have the shape this abkit version writes ({exc!r} is "
            "missing or wrong); re-run abkit analyze with this version to regenerate it.",
            source=results,
        ) from None
    written = result.save(out_dir)
    click.echo(
        f"wrote {written['report']}, {written['html']} and {len(written['plots'])} plot(s)",
        err=True,
    )


@cli.command("surrogate-training")
@click.argument("assignments", type=click.Path())
@click.argument("events", type=click.Path())
@click.option("-c", "--config", type=click.Path(dir_okay=False), help="Experiment spec (TOML).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    required=True,
    help="Where to write the table (.parquet, or .csv).",
)
@_column_options
@_user_errors
def surrogate_training(
    assignments: str, events: str, config: str | None, output: str, **columns: str | None
) -> None:
    """Write a past experiment's surrogate training table: per unit, its first-week
    signals and its long-run retention (D30), read as abkit analyze reads the export.
    Give it to a later analysis as --surrogate-training."""
    import abkit

    given = {k: v for k, v in columns.items() if v is not None}
    table = abkit.surrogate_training_table(assignments, events, config, **given)
    if output.endswith(".csv"):
        table.write_csv(output)
    else:
        table.write_parquet(output)
    matured = table.drop_nulls().height
    click.echo(
        f"wrote {output}: {table.height:,} units, {matured:,} with the first week and the "
        "outcome complete (the training units)",
        err=True,
    )


def _simulation_options(
    *options: tuple[str, Any, str],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Numeric options of the simulation model (default 0: the effect or feature is
    off), passed on to :class:`abkit.dev.simulate.SimulationSpec` under their own names."""

    def apply(command: Callable[..., None]) -> Callable[..., None]:
        for flag, kind, text in reversed(options):
            command = click.option(flag, type=kind, default=0.0, show_default=True, help=text)(
                command
            )
        return command

    return apply


def _written_as(command: Callable[..., None]) -> Callable[..., None]:
    """The options every simulator shares: its seed and the file format it writes."""
    command = click.option(
        "--format",
        "fmt",
        type=click.Choice(["parquet", "csv", "ndjson"]),
        default="parquet",
        show_default=True,
        help="File format of the tables written.",
    )(command)
    return click.option(
        "--seed",
        type=int,
        default=0,
        show_default=True,
        help="Random seed: the same seed and options write the same export.",
    )(command)


# what each lift of a simulator changes (its true effect, relative)
_SIMULATED_LIFTS = {
    "retention_lift": "daily return probability",
    "share_lift": "share probability per output",
    "depth_lift": "AI interactions per session",
    "latency_lift": "latency per output",
    "tokens_lift": "output tokens per output",
    "judge_lift": "judge pass probability",
    "referral_lift": "referral probability per share",
    "d30_direct_lift": "odds of activity from day 8 on, not through the first week",
}
_REPLAY_LIFTS = {
    "judge_lift": "pass probability",
    "latency_lift": "latency",
    "tokens_lift": "output tokens",
    "prompt_lift": "system-prompt tokens",
}


def _true_effects(spec: Any, lifts: dict[str, str], where: str, note: str = "") -> str:
    """One line naming the true effects a simulator was given (the relative changes of
    its model's parameters, then ``note``), or saying that there are none."""
    given = [
        f"{label} {getattr(spec, key):+.1%}" for key, label in lifts.items() if getattr(spec, key)
    ]
    if not given:
        return f"true effects {where}: none (every lift is 0, an A/A export)"
    return f"true effects {where} (relative changes): {', '.join(given)}{note}; all others 0"


def _shell(command: list[str]) -> str:
    """``command`` as one line to paste into a shell."""
    import shlex

    return " ".join(shlex.quote(part) for part in command)


@cli.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option(
    "--mode",
    type=click.Choice(choices(Mode)),
    default="b2c",
    show_default=True,
    help="b2b: users belong to accounts and whole accounts are randomised.",
)
@click.option(
    "--users",
    type=click.IntRange(min=2),
    default=20_000,
    show_default=True,
    help="Number of users assigned.",
)
@click.option(
    "--accounts",
    type=click.IntRange(min=2),
    default=40,
    show_default=True,
    help="B2B only: number of accounts (heavy-tailed seat counts).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=35,
    show_default=True,
    help="Length of the export in days.",
)
@click.option(
    "--enrol-days",
    type=click.IntRange(min=1),
    default=14,
    show_default=True,
    help="Units are assigned uniformly over the first N days.",
)
@click.option(
    "--variants",
    default="control,treatment",
    show_default=True,
    help="Comma-separated variant names, control first.",
)
@_simulation_options(
    ("--retention-lift", float, "Relative change of the daily return probability in treatments."),
    ("--share-lift", float, "Relative change of the per-output share probability in treatments."),
    ("--depth-lift", float, "Relative change of mean AI interactions per session in treatments."),
    (
        "--latency-user-sd",
        click.FloatRange(min=0),
        "Log-scale sd of a per-user latency factor (events of a user are correlated).",
    ),
    ("--latency-lift", float, "Relative change of every output's latency in treatments."),
    ("--tokens-lift", float, "Relative change of every output's output tokens in treatments."),
    (
        "--judge-rate",
        click.FloatRange(0, 1),
        "Share of outputs graded by a judge (judge_score events, value 1 pass / 0 fail).",
    ),
    (
        "--judge-lift",
        float,
        "Relative change of the pass probability in treatments (also moves thumbs up).",
    ),
    (
        "--human-share",
        click.FloatRange(0, 1),
        "Share of judged outputs a person also labels (human_score column, 1 pass / 0 fail); "
        "the judge's score then becomes the pass plus --judge-bias and --judge-noise.",
    ),
    (
        "--judge-bias",
        float,
        "Added to the judge's score in treatments: a judge that favours the candidate's "
        "style, not its quality (the true quality is unchanged).",
    ),
    (
        "--judge-noise",
        click.FloatRange(min=0),
        "Sd of the noise of each judgement (drawn afresh for each of --judge-runs).",
    ),
    (
        "--thumbs-rate",
        click.FloatRange(0, 1),
        "Share of outputs the user rates (thumbs_up / thumbs_down events).",
    ),
    (
        "--referral-rate",
        click.FloatRange(0, 1),
        "Probability that a share brings a new user (a referral_signup event).",
    ),
    ("--referral-lift", float, "Relative change of the referral probability in treatments."),
)
@click.option(
    "--judge-runs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Judgements per judged output (judge_score events with output_id and judge_run).",
)
@click.option("--bimodal", is_flag=True, help="Session depth: one-and-done users plus power users.")
@click.option(
    "--d30-from-week-one",
    is_flag=True,
    help="From day 8 on, a user's activity follows their first week (D1, D7, active days, "
    "share rate and session depth in days 0-6): a treatment moves D30 only through those "
    "signals (surrogacy holds).",
)
@click.option(
    "--d30-direct-lift",
    type=float,
    default=0.0,
    show_default=True,
    help="Relative change of the odds of activity on every day from day 8 on in treatments, "
    "not through the first-week signals (surrogacy fails); implies --d30-from-week-one.",
)
@click.option(
    "--pre-days",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Days of user history before assignment (for CUPED pre-period covariates).",
)
@click.option(
    "--lift-half-life",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The share and depth lifts halve every N days since assignment (novelty).",
)
@_written_as
@_user_errors
def simulate(
    outdir: str,
    mode: str,
    users: int,
    accounts: int,
    days: int,
    enrol_days: int,
    variants: str,
    bimodal: bool,
    d30_from_week_one: bool,
    pre_days: int,
    lift_half_life: float | None,
    seed: int,
    fmt: str,
    **model: float,
) -> None:
    """Write a synthetic event-level export (assignments + events) to OUTDIR."""
    from abkit.dev.simulate import SimulationSpec, true_d30_effects, write_export
    from abkit.dev.simulate import simulate as run

    spec = SimulationSpec(
        mode=mode,
        users=users,
        accounts=accounts,
        days=days,
        enrol_days=enrol_days,
        variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
        bimodal=bimodal,
        d30_from_week_one=d30_from_week_one,
        pre_days=pre_days,
        lift_half_life=lift_half_life,
        seed=seed,
        **model,
    )
    export = run(spec)
    paths = write_export(export, outdir, fmt)
    for p in paths:
        click.echo(f"wrote {p}", err=True)
    fading = (
        f" (the share and depth lifts halving every {lift_half_life:g} days)"
        if lift_half_life
        else ""
    )
    if spec.week_one_model and spec.retention_lift:
        fading += " (the daily return probability's up to day 7; later days follow week one)"
    click.echo(_true_effects(spec, _SIMULATED_LIFTS, "in the treatment arms", fading), err=True)
    if spec.judge_bias:
        click.echo(
            f"judge bias in the treatment arms: {spec.judge_bias:+g} on the judge's score "
            "(the judge's, not a change of quality)",
            err=True,
        )
    if spec.week_one_model:
        truth = true_d30_effects(spec)
        effects = ", ".join(
            f"{variant} {effect:+.4f} ({truth.relative(variant):+.1%}; through the first "
            f"week {through:+.4f}, direct {direct:+.4f})"
            for (variant, effect), (_, through), (_, direct) in zip(
                truth.effects, truth.through, truth.direct, strict=True
            )
        )
        click.echo(
            f"true D30 retention: control {truth.values[0][1]:.4f}; effects {effects} "
            f"(Monte Carlo error {truth.mc_se:.1g})",
            err=True,
        )
    command = ["abkit", "analyze", *map(str, paths), *(["--mode", "b2b"] * (mode == "b2b"))]
    click.echo(f"analyse it with: {_shell(command)}", err=True)


@cli.command("simulate-replay")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option(
    "--users",
    type=click.IntRange(min=2),
    default=300,
    show_default=True,
    help="Number of users whose inputs are replayed.",
)
@click.option(
    "--inputs-per-user",
    type=click.FloatRange(min=1),
    default=7.0,
    show_default=True,
    help="Mean number of inputs a user asked (1 + Poisson).",
)
@click.option(
    "--versions",
    default="live,candidate",
    show_default=True,
    help="The two version names, the live one first.",
)
@click.option(
    "--judge-rate",
    type=click.FloatRange(0, 1, min_open=True),
    default=1.0,
    show_default=True,
    help="Share of inputs whose two outputs a judge graded (judge_score 1 pass / 0 fail).",
)
@_simulation_options(
    ("--judge-lift", float, "Relative change of the candidate's pass probability."),
    ("--latency-lift", float, "Relative change of the candidate's latency."),
    ("--tokens-lift", float, "Relative change of the candidate's output tokens."),
    ("--prompt-lift", float, "Relative change of the candidate's system-prompt tokens."),
)
@_written_as
@_user_errors
def simulate_replay(
    outdir: str,
    users: int,
    inputs_per_user: float,
    versions: str,
    judge_rate: float,
    seed: int,
    fmt: str,
    **lifts: float,
) -> None:
    """Write a synthetic paired export (a shadow or replay run: both versions answer the
    same inputs) to OUTDIR/outputs.<format>; analyse it with --variant version
    --control <live>."""
    from abkit.dev.replay import ReplaySpec, simulate_replay
    from abkit.dev.simulate import write_frame

    names = tuple(v.strip() for v in versions.split(",") if v.strip())
    if len(names) != 2:
        from abkit.errors import AbkitInputError

        raise AbkitInputError("--versions takes two names, the live one first.")
    spec = ReplaySpec(
        users=users,
        inputs_per_user=inputs_per_user,
        versions=(names[0], names[1]),
        judge_rate=judge_rate,
        seed=seed,
        **lifts,
    )
    path = write_frame(simulate_replay(spec), outdir, "outputs", fmt)
    click.echo(f"wrote {path}", err=True)
    click.echo(
        _true_effects(spec, _REPLAY_LIFTS, f"of '{names[1]}' against '{names[0]}'"), err=True
    )
    command = ["abkit", "analyze", str(path), "--variant", "version", "--control", names[0]]
    click.echo(f"analyse it with: {_shell(command)}", err=True)


@cli.command()
@click.argument("data", required=False)
@click.argument("events", required=False)
@click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    help="Experiment spec (TOML): its metrics, arms, correction, CUPED and sequential "
    "settings. Without it, documented defaults apply.",
)
@click.option("--metric", help="Metric to size (default: the first).")
@click.option(
    "--effect",
    type=float,
    required=True,
    help="Effect to detect, in metric units (or a fraction with --relative).",
)
@click.option("--relative", is_flag=True, help="--effect is a relative lift, e.g. 0.05.")
@click.option(
    "--mode",
    type=click.Choice(choices(Mode)),
    default=None,
    help="b2b: size in accounts (randomised by account), with the between-account spread "
    "(overrides [experiment] mode).",
)
@click.option(
    "--sd",
    type=float,
    help="Standard deviation per user (B2C) or account (B2B), instead of estimating it from DATA.",
)
@click.option("--baseline", type=float, help="Control value, for a relative effect with --sd.")
@click.option(
    "--proportion",
    is_flag=True,
    help="The metric is a proportion: its sd is sqrt(p(1 - p)) of --baseline (no data needed).",
)
@click.option(
    "--alpha", type=float, default=0.05, show_default=True, help="Two-sided significance level."
)
@click.option(
    "--power",
    "target",
    type=float,
    default=0.8,
    show_default=True,
    help="Probability of detecting the effect.",
)
@click.option(
    "--arms",
    type=click.IntRange(min=2),
    help="Arms including the control (default: the data's or the config's, else 2).",
)
@click.option(
    "--sequential",
    type=click.Choice(choices(SequentialMethod)),
    help="Plan for sequential monitoring (default: the config's [sequential] method).",
)
@click.option("--looks", type=click.IntRange(min=1), help="Looks planned (default: 30; GST 5).")
@click.option(
    "--arrivals",
    type=click.FloatRange(min=0, min_open=True),
    help="New units per day, for the duration (default: from the data's assignment times).",
)
@click.option(
    "--window",
    type=click.IntRange(min=0),
    help="Days after the last unit's assignment before the metric is known, added to the "
    "duration (a D7 retention: 8, D30: 31; default: the metric's, from the data or the "
    "config).",
)
@click.option(
    "--bayesian",
    is_flag=True,
    help="Also simulate the Bayesian decision rule ([bayesian] prior, chance and tolerance "
    "of the config): P(ship) at the effect and at no effect, and the expected loss.",
)
@click.option(
    "--per-arm",
    "per_arm",
    type=click.IntRange(min=2),
    multiple=True,
    help="Units per arm to simulate the Bayesian rule at; repeat for a grid (default: the "
    "plan's, and the data's current size).",
)
@click.option(
    "--simulations",
    type=click.IntRange(min=100, max=2_000_000),
    help="Simulated experiments per size for --bayesian (default: 20,000).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the --bayesian simulation.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@_column_options
@_user_errors
def power(
    data: str | None,
    events: str | None,
    config: str | None,
    metric: str | None,
    effect: float,
    relative: bool,
    mode: str | None,
    sd: float | None,
    baseline: float | None,
    proportion: bool,
    alpha: float,
    target: float,
    arms: int | None,
    sequential: str | None,
    looks: int | None,
    arrivals: float | None,
    window: int | None,
    bayesian: bool,
    per_arm: tuple[int, ...],
    simulations: int | None,
    seed: int,
    fmt: str,
    **columns: str | None,
) -> None:
    """How many users (B2C) or accounts (--mode b2b) per arm an effect needs, and for
    how many days the experiment must run."""
    import json

    from abkit.power import power_analysis

    result = power_analysis(
        data,
        config,
        events=events,
        metric=metric,
        effect=effect,
        relative=relative,
        mode=mode,
        sd=sd,
        baseline=baseline,
        proportion=proportion,
        alpha=alpha,
        power=target,
        arms=arms,
        sequential=cast(SequentialMethod | None, sequential),
        looks=looks,
        daily_arrivals=arrivals,
        window=window,
        bayesian=bayesian,
        per_arm=per_arm or None,
        simulations=simulations,
        seed=seed,
        **columns,
    )
    click.echo(json.dumps(result.to_dict(), indent=2) if fmt == "json" else result.to_text())


# --- the experiment archive ----------------------------------------------------------------

_ARCHIVE_OPTION = click.option(
    "--archive",
    "archive_path",
    default="abkit-archive",
    show_default=True,
    envvar="ABKIT_ARCHIVE",
    help="The archive: a folder (or, to read, a URL Polars can read); ABKIT_ARCHIVE sets it.",
)


@cli.group()
def archive() -> None:
    """The experiment archive: every analysis's estimates and decisions, from which the
    Bayesian reading learns each metric's prior."""


@archive.command("add")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_ARCHIVE_OPTION
@_user_errors
def archive_add(results: tuple[str, ...], archive_path: str) -> None:
    """Append each RESULTS file (results.json of 'abkit analyze --out' or '-f json')."""
    import json

    from abkit.archive import Archive
    from abkit.errors import AbkitInputError
    from abkit.result import AnalysisResult

    store = Archive(archive_path)
    for path in results:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            result = AnalysisResult.from_dict(data)
        except FileNotFoundError:
            raise AbkitInputError(
                "no such file.", source=path, hint="Give the results.json an analysis wrote."
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise AbkitInputError(
                f"this is not an abkit results.json ({type(exc).__name__}: {exc}).",
                source=path,
                hint="Write one with 'abkit analyze ... --out FOLDER' or '-f json -o FILE'.",
            ) from None
        written = store.add(result)
        click.echo(f"added {result.name}: {len(result.results)} result(s) in {written}")


@archive.command("list")
@_ARCHIVE_OPTION
@_user_errors
def archive_list(archive_path: str) -> None:
    """One line per experiment: when it was added, its export's end, metrics, treatments."""
    from abkit.archive import Archive

    table = Archive(archive_path).experiments()
    if table.is_empty():
        click.echo(f"the archive at {archive_path} holds no experiment yet")
        return
    click.echo(f"{table.height} experiment(s) in {archive_path}")
    for row in table.iter_rows(named=True):
        click.echo(
            f"  {row['experiment']}: added {row['added_at']:%Y-%m-%d %H:%M} UTC, export end "
            f"{row['export_end'] or 'n/a'}, {row['metrics']} metric(s), "
            f"{row['treatments']} treatment(s), config {row['config_hash']}"
        )


@archive.command("show")
@click.argument("metric")
@_ARCHIVE_OPTION
@click.option(
    "--family",
    type=click.Choice(["normal", "t"]),
    default="normal",
    show_default=True,
    help="The prior's family: normal, or a t for fat-tailed effects.",
)
@click.option(
    "--min-experiments",
    default=10,
    show_default=True,
    type=click.IntRange(2, 10_000),
    help="Fewer past experiments than this: the default prior is used.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Save a plot of the past lifts, raw and shrunk (PNG).",
)
@_user_errors
def archive_show(
    metric: str, archive_path: str, family: str, min_experiments: int, plot_path: str | None
) -> None:
    """METRIC's past lifts, raw and shrunk toward the prior fitted to them."""
    from abkit.archive import Archive
    from abkit.errors import AbkitInputError
    from abkit.report.bayesian import archive_lines

    store = Archive(archive_path)
    history = store.history(metric)
    if history.is_empty():
        known = sorted(set(store.latest()["metric"].to_list()))
        raise AbkitInputError(
            f"the archive has no result for metric '{metric}'.",
            source=archive_path,
            hint=f"Metrics in it: {', '.join(known) or 'none'}.",
        )
    fitted = store.prior(metric, family=family, minimum=min_experiments)  # type: ignore[arg-type]
    for line in archive_lines(metric, history, fitted):
        click.echo(line)
    if plot_path:
        from abkit.plots.archive import past_lifts_figure

        past_lifts_figure(metric, history, fitted).savefig(plot_path, dpi=120)
        click.echo(f"wrote {plot_path}", err=True)


if __name__ == "__main__":  # pragma: no cover
    cli()
