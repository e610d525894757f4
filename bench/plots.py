"""The load test's figures, as PNG files next to ``report.md``: served throughput against
concurrency (with the error and shed shares below it), latency percentiles per row, and the
scale-out against linear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.plan import Run

THROUGHPUT_PNG = "throughput_vs_concurrency.png"
LATENCY_PNG = "latency_percentiles.png"
WRK_SCENARIOS = ("NGINX return 200", "bare WSGI", "/health", "message list")
SCALEOUT_PNG = "scaleout.png"


def _pyplot() -> Any:
    # Imported when a figure is drawn, on the file backend: no display, and no import cost for
    # the runs and tests that draw nothing.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def load_plots(run: Run, out: Path) -> list[Path]:
    """Throughput against concurrency and the latency percentiles; returns the two files."""
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    # Honest throughput: served 2xx per second on top, errors and shed requests (as a share of
    # all answers) below; a fast failure or a shed request never counts as throughput.
    throughput = out / THROUGHPUT_PNG
    figure, (axis, errors_axis) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, height_ratios=(2, 1))
    for scenario in WRK_SCENARIOS:
        rows = sorted((r for r in run.rows if r.scenario == scenario and r.ok), key=lambda r: r.concurrency)
        if not rows:
            continue
        line = axis.plot([r.concurrency for r in rows], [max(r.served_rps, 0.1) for r in rows], marker="o",
                         label=scenario)[0]  # fmt: skip
        total = [max(r.requests, 1) for r in rows]
        levels = [r.concurrency for r in rows]
        error_share = [100 * r.errors / t for r, t in zip(rows, total, strict=True)]
        errors_axis.plot(levels, error_share, marker="x", color=line.get_color(), label=f"{scenario}: errors")
        if any(r.shed for r in rows):
            shed_share = [100 * r.shed / t for r, t in zip(rows, total, strict=True)]
            errors_axis.plot(
                levels,
                shed_share,
                marker="s",
                linestyle="--",
                color=line.get_color(),
                label=f"{scenario}: shed",
            )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(list(run.plan.levels))
    axis.xaxis.set_major_formatter(ScalarFormatter())
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_ylabel("served (2xx) per second")
    axis.set_title("Served throughput vs concurrency" + (" (QUICK MODE)" if run.plan.quick else ""))
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    errors_axis.set_xlabel("concurrent connections (wrk)")
    errors_axis.set_ylabel("% of answers")
    errors_axis.set_ylim(-2, 102)
    errors_axis.grid(True, alpha=0.3)
    errors_axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(throughput, dpi=110)
    plt.close(figure)

    latency = out / LATENCY_PNG
    rows = [r for r in run.rows if r.ok and r.requests]
    figure, axis = plt.subplots(figsize=(10, 5))
    labels = [f"{r.scenario}\nc={r.concurrency}" for r in rows]
    positions = range(len(rows))
    width = 0.28
    for offset, (name, attribute) in enumerate((("p50", "p50_ms"), ("p90", "p90_ms"), ("p99", "p99_ms"))):
        axis.bar(
            [p + (offset - 1) * width for p in positions],
            [getattr(r, attribute) for r in rows],
            width,
            label=name,
        )
    axis.set_xticks(list(positions))
    axis.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    axis.set_yscale("log")
    axis.set_ylabel("latency (ms)")
    axis.set_title("Latency percentiles" + (" (QUICK MODE)" if run.plan.quick else ""))
    axis.grid(True, axis="y", which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(latency, dpi=110)
    plt.close(figure)
    return [throughput, latency]


def scaleout_plot(rates: dict[int, float], *, quick: bool, out: Path) -> Path:
    """Served per second on 1..N capped servers, against N times one server."""
    plt = _pyplot()
    one = rates.get(1) or 0.0
    figure, axis = plt.subplots(figsize=(6, 4))
    counts = sorted(rates)
    axis.plot(counts, [rates[n] for n in counts], marker="o", label="measured (served 2xx/s)")
    axis.plot(counts, [one * n for n in counts], linestyle="--", label="linear (N x one)")
    axis.set_xticks(counts)
    axis.set_xlabel("app servers (each capped at the same CPU share)")
    axis.set_ylabel("message list, served per second")
    axis.set_title("Scale-out" + (" (QUICK MODE)" if quick else ""))
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / SCALEOUT_PNG, dpi=110)
    plt.close(figure)
    return out / SCALEOUT_PNG
