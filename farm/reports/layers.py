"""The per-layer profile of each device's best engine, as an HTML section
of the report and the dashboard (jobs measured with ``measure.layer_profile``;
the full table is the job's ``layer-profile`` artifact)."""

from __future__ import annotations

from html import escape

import pandas as pd
from sqlalchemy import select

from farm.db import Measurement, session_scope

ROWS = 15


def _profiles(ids: list[int]) -> dict[int, dict]:
    with session_scope() as session:
        rows = session.execute(select(Measurement.id, Measurement.telemetry).where(Measurement.id.in_(ids)))
        return {mid: (tel or {}).get("layer_profile") for mid, tel in rows if (tel or {}).get("layer_profile")}


def _table(device: str, job: str, profile: dict) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("layer / kernel", "type", "precision", "tactic", "median ms", "share"))
    rows = []
    for row in profile.get("top", [])[:ROWS]:
        share = row.get("share")
        cells = [escape(str(row.get("name") or "")), escape(str(row.get("type") or "")),
                 escape(str(row.get("precision") or "")), escape(str(row.get("tactic") or ""))]
        rows.append("".join(f'<td class="t">{c}</td>' for c in cells)
                    + f"<td>{row.get('median_ms', 0):.4f}</td><td>{(share or 0) * 100:.1f} %</td>")
    caption = (f"<h3>{escape(device)}: job {escape(job)} ({escape(str(profile.get('source')))}, "
               f"{profile.get('iterations')} iterations, total {profile.get('total_median_ms', 0):.3f} ms, "
               f"top {min(ROWS, len(profile.get('top', [])))} of {profile.get('rows')})</h3>")
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    return f'{caption}<table class="layers"><tr>{head}</tr>{body}</table>'


def layer_section(best: pd.DataFrame) -> str:
    """One table per device class for its winner, where it has a layer profile; "" if none has."""
    if best.empty or "measurement_id" not in best or "role" not in best:
        return ""
    winners = best[(best["role"] == "winner") & best["measurement_id"].notna()]
    profiles = _profiles([int(i) for i in winners["measurement_id"]])
    parts = [_table(str(r.device_class), str(r.job_id), profiles[int(r.measurement_id)])
             for r in winners.itertuples() if int(r.measurement_id) in profiles]
    return ("<h2>Per-layer profile of the best engine per device</h2>" + "".join(parts)) if parts else ""
