"""The summary that opens every report view: per device class (and
workload, when the ranking reports one) the winner and its ties in one
sentence, with figures and intervals, the speed-up against the baseline
and the command that fetches the engine.

The winner and ties come from farm best's ranking (best.py); nothing here
ranks. Figures are printed with 4 significant digits (``figure``).
"""

from __future__ import annotations

from html import escape

import pandas as pd

from farm.reports.plots import config_name


def figure(value) -> str:
    return "-" if value is None or value != value else f"{float(value):.4g}"


def _interval(row, low: str, high: str) -> str:
    return f"95 % CI {figure(row[low])}-{figure(row[high])}"


def _groups(best: pd.DataFrame) -> list[str]:
    return ["device_class"] + (["workload"] if "workload" in best.columns else [])


def summaries(sweep_id: str, frame: pd.DataFrame, best: pd.DataFrame, compared: pd.DataFrame) -> list[dict]:
    """One dict per device class (and workload): ``sentence`` plus the
    figures it quotes, for the page's data attributes and the tests."""
    out = []
    by_job = compared.set_index("job_id") if len(compared) else compared
    left_out = best.attrs.get("excluded", [])
    for key, group in (best.groupby(_groups(best), sort=True) if len(best) else []):
        key = key if isinstance(key, tuple) else (key,)
        winner = group[group["role"] == "winner"].iloc[0]
        ties = group[group["role"] == "tied"]
        # Several workloads on one device: each is its own comparison, named by its profile.
        several = len(key) > 1 and best.loc[best["device_class"] == key[0], "workload"].nunique() > 1
        place = key[0] + (f" (profile {winner['profile']})" if several else "")
        objective = winner.get("objective", "latency")
        by = "p50 latency" if objective == "latency" else "throughput"
        p50_ci = _interval(winner, "latency_p50_ci_low_ms", "latency_p50_ci_high_ms")
        throughput_ci = _interval(winner, "throughput_ci_low", "throughput_ci_high")
        text = (f"On {place}, {config_name(winner)} wins (objective: {by}): p50 {figure(winner['latency_p50_ms'])} ms "
                f"({p50_ci}), {figure(winner['throughput'])} samples/s ({throughput_ci})")
        if len(ties):
            tied = "; ".join(f"{config_name(t)} (p50 {figure(t['latency_p50_ms'])} ms, "
                             f"{_interval(t, 'latency_p50_ci_low_ms', 'latency_p50_ci_high_ms')})"
                             for _, t in ties.iterrows())
            text += (f"; statistically tied with it (within 25 % of its {by} and with overlapping 95 % "
                     f"intervals; the winner has the best point estimate): {tied}")
        text += ". " + _against_baseline(winner, by_job)
        profile = f" --profile {winner['profile']}" if several else ""
        fetch = f"farm fetch --sweep {sweep_id} --device {winner['device_class']}{profile} -o {_file_name(winner)}"
        text += f" Engine to fetch: {fetch}" + _not_ranked(left_out, key)
        out.append({"device_class": key[0], "workload": key[1] if len(key) > 1 else None,
                    "winner": winner["job_id"], "tied": ties["job_id"].tolist(), "sentence": text, "fetch": fetch,
                    "latency_p50_ms": winner["latency_p50_ms"], "throughput": winner["throughput"],
                    "speedup": _baseline_figure(winner, by_job, "speedup"),
                    "throughput_gain": _baseline_figure(winner, by_job, "throughput_gain")})
    done = set(best["device_class"]) if len(best) else set()
    for device in sorted(set(frame["device_class"]) - done):
        jobs = frame[frame["device_class"] == device]
        reason = ("no configuration passed the accuracy gate" if (jobs["status"] == "done").any()
                  else "no configuration finished")
        if any(row["device_class"] == device for row in left_out):
            reason = "no configuration eligible to win"
        out.append({"device_class": device, "workload": None, "winner": None, "tied": [], "fetch": None,
                    "sentence": f"On {device}, {reason}: nothing to deploy." + _not_ranked(left_out, (device,))})
    return out


def _not_ranked(left_out: list[dict], key: tuple) -> str:
    """The configurations of this device class (and workload) kept from
    winning or tying by their host_bound flag (best.py ``excluded``)."""
    rows = [r for r in left_out if (r["device_class"], r["workload"])[:len(key)] == tuple(key)]
    if not rows:
        return ""
    out = ""
    for reason in dict.fromkeys(r["reason"] for r in rows):
        names = ", ".join(f"{r['job_id']} ({r['backend']} {r['precision']} batch {r['batch_size']}, would be "
                          f"{r['would_be']})" for r in rows if r["reason"] == reason)
        out += f" Not ranked, {_short_reason(reason)}: {names}."
    return out


def _short_reason(reason: str) -> str:
    """The reason without its remedy (the summary sentence is read beside the table)."""
    from farm.reports.best import HOST_BOUND_REASON

    if reason == HOST_BOUND_REASON:
        return "flagged host_bound (the figure is the host's launch rate, not the GPU's)"
    return reason.split(";")[0]


def _baseline_figure(winner, by_job, column):
    if winner["job_id"] not in getattr(by_job, "index", ()):
        return None
    value = by_job.loc[winner["job_id"], column]
    return None if value != value else float(value)


def _against_baseline(winner, by_job) -> str:
    if winner["job_id"] not in getattr(by_job, "index", ()):
        return "No baseline to compare with."
    row = by_job.loc[winner["job_id"]]
    base = row["baseline_job_id"]
    if base is None or base != base:
        return f"No fp32 batch-1 {winner['backend']} baseline on this device to compare with."
    if base == winner["job_id"]:
        return "It is the baseline itself (fp32, batch 1)."
    base_row = by_job.loc[base]
    return (f"Against the baseline {config_name(base_row)}: "
            f"{figure(row['throughput_gain'])}x the throughput and {figure(row['speedup'])}x lower p50 latency.")


def _file_name(winner) -> str:
    return file_name(winner["backend"], winner["precision"], winner["batch_size"])


def file_name(backend: str, precision: str, batch_size) -> str:
    """A file name that says what a job's artifact is (its backend's artifact_suffix: .onnx, .engine, ...):
    the winner sentence's -o and the dashboard's download use it."""
    return f"{backend}-{precision}-b{int(batch_size)}{artifact_suffix(backend)}"


def artifact_suffix(backend: str) -> str:
    from farm.backends import BackendConfig, backend_config

    try:
        return backend_config(backend).artifact_suffix
    except Exception:  # a backend not installed here (or a broken plugin): say nothing it may not be
        return BackendConfig.artifact_suffix


def summary_html(items: list[dict]) -> str:
    parts = []
    for item in items:
        attrs = " ".join(f'data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in item.items()
                         if k in ("device_class", "workload", "winner", "latency_p50_ms", "throughput", "speedup",
                                  "throughput_gain") and v is not None)
        parts.append(f'<p class="verdict" {attrs}>{escape(item["sentence"])}</p>')
    return f'<section class="summary"><h2>Summary</h2>{"".join(parts) or "<p>no results yet</p>"}</section>'


def summary_sentences(sweep_id: str) -> list[str]:
    """The summary of a sweep as plain sentences (the CLI prints them under
    its tables)."""
    from farm.reports.candidates import find_best
    from farm.reports.compare import comparison
    from farm.reports.rows import load_frame

    frame = load_frame(sweep_id=sweep_id)
    return [item["sentence"] for item in summaries(sweep_id, frame, find_best(sweep_id=sweep_id), comparison(frame))]
