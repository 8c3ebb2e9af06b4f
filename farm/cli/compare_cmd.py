"""``farm compare SWEEP_A SWEEP_B``: per configuration, B against A."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from farm.cli.dialect import format_option
from farm.cli.output import emit, emit_export, render_table, table_stream
from farm.errors import UserError
from farm.output_files import check_output
from farm.reports.sweep_compare import SWEEP_COMPARE_FIELDS, compare_sweeps
from farm.cli.numbers import FiniteFloat
from farm.terminal import say

TABLE = (("backend", "backend"), ("prec", "precision"), ("batch", "batch_size"), ("profile", "profile"),
         ("device A", "device_class_a"), ("device B", "device_class_b"), ("p50 A ms", "latency_p50_ms_a"),
         ("p50 B ms", "latency_p50_ms_b"), ("B/A", "ratio"), ("CI low", "ratio_ci_low"),
         ("CI high", "ratio_ci_high"), ("change %", "change_pct"), ("thru B/A", "throughput_ratio"),
         ("verdict", "verdict"))


def _summary_line(comparison) -> str:
    counts = ", ".join(f"{n} {v}" for v, n in comparison.counts().items())
    across = " (matched across device classes)" if comparison.across_devices else ""
    return (f"{comparison.sweep_b} against {comparison.sweep_a}{across}: {counts}; B/A is the p50 latency ratio "
            f"(> 1: B slower) with its 95 % bootstrap interval; a change must clear {comparison.min_change_pct:g} %")


@click.command("compare")
@click.argument("sweep_a")
@click.argument("sweep_b")
@format_option("csv", "parquet", "html")
@click.option("--min-change", "min_change", type=FiniteFloat(0), default=10.0, show_default=True,
              metavar="PCT", help="A change counts only when its whole interval clears PCT percent (run-to-run noise).")
@click.option("--fail-on-regression", "fail_pct", type=FiniteFloat(0), metavar="PCT",
              help="Exit 1 when any configuration is significantly slower in B by more than PCT percent.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
def compare_cmd(sweep_a, sweep_b, fmt, min_change, fail_pct, output):
    """Compare SWEEP_B with SWEEP_A configuration by configuration: a new
    model version, a new backend version or another GPU.

    Matches (backend, precision, batch, profile, device class); two sweeps
    on one different device class each are matched without it. Verdict per
    configuration: faster, slower or tied (the 95 % bootstrap interval of
    the p50 ratio must clear --min-change), or only in A/B, not measured.
    With --fail-on-regression PCT it gates a CI pipeline.
    """
    check_output(output)
    if sweep_a == sweep_b:
        raise UserError("give two different sweeps")
    comparison = compare_sweeps(sweep_a, sweep_b, min_change_pct=min_change)
    rows = comparison.rows
    if fmt == "html":
        from farm.reports.compare_html import sweep_compare_html

        emit(sweep_compare_html(comparison, fail_pct), output)
    elif not emit_export(rows, SWEEP_COMPARE_FIELDS, fmt, output):
        from farm.reports.rows import frame_rows  # pandas: loaded by the command that needs it

        text = render_table([h for h, _ in TABLE], [k for _, k in TABLE], frame_rows(rows, SWEEP_COMPARE_FIELDS),
                            table_stream(output))
        emit(text, output)
        say(_summary_line(comparison))  # under the table, on its stream
    if fail_pct is not None:
        bad = comparison.regressions(fail_pct)
        if len(bad):
            names = "; ".join(f"{r.backend} {r.precision} b{r.batch_size} {r.profile}: {r.change_pct:+.1f} % "
                              f"(CI {100 * (r.ratio_ci_low - 1):+.1f}..{100 * (r.ratio_ci_high - 1):+.1f} %)"
                              for r in bad.itertuples())
            say(f"regression: {len(bad)} configurations significantly slower by more than {fail_pct:g} %: "
                f"{names}", err=True)
            sys.exit(1)
