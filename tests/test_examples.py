"""The bundled example and the notebook run as documented."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from abkit_cli.main import cli
from tests.conftest import shared_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXPORT = EXAMPLES / "ai_summary_export"


def test_bundled_example_recovers_the_simulated_effects():
    out = CliRunner().invoke(
        cli,
        [
            "analyze",
            str(EXPORT / "assignments.parquet"),
            str(EXPORT / "events.parquet"),
            "-c",
            str(EXPORT / "experiment.toml"),
            "--format",
            "json",
        ],
    )
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    rows = {r["metric"]: r for r in d["results"]}
    assert not d["srm"]["mismatch"]
    assert d["exclusions"] == []
    # true share lift +15 %: the interval must contain it and exclude 0
    share = rows["share_rate"]
    assert share["relative_ci"][0] < 0.15 < share["relative_ci"][1]
    assert share["decision"]["outcome"] == "better"
    assert rows["session_depth"]["relative_ci"][0] < 0.05 < rows["session_depth"]["relative_ci"][1]
    guardrails = ("regenerate_rate", "error_rate", "latency_ms")
    assert {rows[m]["decision"]["outcome"] for m in guardrails} == {"guardrail pass"}


def test_model_swap_example_recovers_quality_latency_and_cost():
    """The model-swap example's true effects (its experiment.toml): pass rate +8 %,
    every latency -8 %, cost per output +6.76 % (E[cost] from the simulator's token
    distributions at the example's prices: output tokens +10 % are 67.6 % of the cost)."""
    swap = EXAMPLES / "model_swap"
    args = [str(swap / "assignments.parquet"), str(swap / "events.parquet")]
    out = CliRunner().invoke(
        cli, ["analyze", *args, "-c", str(swap / "experiment.toml"), "-f", "json"]
    )
    assert out.exit_code == 0, out.output
    rows = {r["metric"]: r for r in json.loads(out.stdout)["results"]}
    for metric, lift in (
        ("judge_score", 0.08),
        ("latency_p95", -0.08),
        ("cost_per_output", 0.0676),
    ):
        low, high = rows[metric]["relative_ci"]
        assert low < lift < high, metric
    assert rows["judge_score"]["decision"]["outcome"] == "better"
    guardrails = {rows[m]["decision"]["outcome"] for m in ("latency_p95", "cost_per_output")}
    assert guardrails == {"guardrail pass"}


def test_shadow_replay_example_recovers_quality_latency_and_cost():
    """The shadow-replay example's true differences (its experiment.toml): pass rate
    +5.43 % (E[min(1, 1.06·p)] / E[p] − 1 under the simulator's model, by numerical
    integration over 4M draws), latency −12 %, cost +4.5 % (output tokens +8 % at the
    example's prices, 100,000 simulated users)."""
    replay = EXAMPLES / "shadow_replay"
    out = CliRunner().invoke(
        cli,
        [
            "analyze",
            str(replay / "outputs.parquet"),
            "-c",
            str(replay / "experiment.toml"),
            "-f",
            "json",
        ],
    )
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert d["srm"] is None and d["exclusions"] == []
    rows = {r["metric"]: r for r in d["results"]}
    for metric, lift in (("judge_pass_rate", 0.0543), ("latency_ms", -0.12), ("cost", 0.045)):
        low, high = rows[metric]["relative_ci"]
        assert low < lift < high, metric
        assert rows[metric]["paired"]["variance_removed"] > 0.5
    assert rows["judge_pass_rate"]["decision"]["outcome"] == "better"
    assert {rows[m]["decision"]["outcome"] for m in ("latency_ms", "cost")} == {"guardrail pass"}


def test_notebook_code_cells_run(monkeypatch):
    shared_file("cookie_cats", "cookie_cats.csv")
    nb = json.loads((EXAMPLES / "real_datasets.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    monkeypatch.chdir(EXAMPLES)
    namespace: dict = {}
    exec(compile(code, "real_datasets.ipynb", "exec"), namespace)
    assert round(namespace["cookie"].srm.p_value, 4) == 0.0086
