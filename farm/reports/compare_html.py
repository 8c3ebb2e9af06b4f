"""HTML view of ``farm compare``: the verdict counts first, a forest plot
of every matched configuration's B/A ratio with its interval, then the
table. Self-contained like the sweep report."""

from __future__ import annotations

from html import escape

from farm.reports import svg
from farm.reports.html import page, table

COLUMNS = (("backend", "backend"), ("prec", "precision"), ("batch", "batch_size"), ("profile", "profile"),
           ("device A", "device_class_a"), ("device B", "device_class_b"), ("job A", "job_id_a"),
           ("job B", "job_id_b"), ("p50 A ms", "latency_p50_ms_a"), ("p50 B ms", "latency_p50_ms_b"),
           ("B/A", "ratio"), ("CI low", "ratio_ci_low"), ("CI high", "ratio_ci_high"), ("change %", "change_pct"),
           ("throughput B/A", "throughput_ratio"), ("accuracy A", "accuracy_pass_a"),
           ("accuracy B", "accuracy_pass_b"), ("verdict", "verdict"))


def sweep_compare_body(comparison, fail_pct: float | None = None) -> str:
    rows = comparison.rows
    counts = ", ".join(f"{n} {v}" for v, n in comparison.counts().items()) or "nothing to compare"
    lines = [f'<p class="verdict-counts">{escape(comparison.sweep_b)} against {escape(comparison.sweep_a)}: '
             f"{escape(counts)}. B/A is the p50 latency ratio (&gt; 1: B is slower) with its 95 % bootstrap "
             f"interval; a change counts when its whole interval clears {comparison.min_change_pct:g} % (grey band)."
             + (" Matched across device classes." if comparison.across_devices else "") + "</p>"]
    if fail_pct is not None:
        bad = comparison.regressions(fail_pct)
        lines.append(f'<p class="gate {"fail" if len(bad) else "pass"}">regression gate ({fail_pct:g} %): '
                     + (f"{len(bad)} configurations significantly slower" if len(bad) else "passed") + "</p>")
    measured = rows[rows["ratio"].notna() & rows["ratio_ci_low"].notna()]
    forest = [{"label": f"{r.backend} {r.precision} b{int(r.batch_size)} {r.profile}"
               + (f" {r.device_class_a}" if not comparison.across_devices else ""),
               "value": float(r.ratio), "low": float(r.ratio_ci_low), "high": float(r.ratio_ci_high),
               "job": r.job_id_b, "verdict": r.verdict} for r in measured.itertuples()]
    chart = svg.interval_chart("sweep-ratio", "p50 latency, B / A (95 % interval)", "ratio (log scale; > 1: B slower)",
                               forest, band=comparison.min_change_pct / 100)
    keyed = rows.assign(job_id=rows["job_id_b"].fillna(rows["job_id_a"]))
    return "".join(lines) + f'<div class="plots"><figure class="chart">{chart}</figure></div>' + \
        table(keyed, COLUMNS, "sweep-compare")


def sweep_compare_html(comparison, fail_pct: float | None = None) -> str:
    title = f"Engine Farm: {comparison.sweep_b} against {comparison.sweep_a}"
    return page(title, f"<h1>{escape(title)}</h1>{sweep_compare_body(comparison, fail_pct)}")
