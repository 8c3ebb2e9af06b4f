"""What ``farm sweep status``, the HTML report and the dashboard show about
a search: read-only, from the database (no strategy, no step). Reports
import this, never the orchestrator (farm/search/driver.py)."""

from __future__ import annotations

from sqlalchemy import select

from farm.db import FINAL_STATES, Finals, Job, Search, SearchCandidate, session_scope
from farm.search.config import SearchConfig


def search_summary(sweep_id: str) -> dict:
    """What ``farm sweep status`` and the report show about a search."""
    with session_scope() as session:
        search = session.get(Search, sweep_id)
        if search is None:
            return {}
        rows = list(session.scalars(select(SearchCandidate).where(SearchCandidate.sweep_id == sweep_id)
                                    .order_by(SearchCandidate.idx)))
        jobs = {j.id: j for j in session.scalars(select(Job).where(Job.sweep_id == sweep_id))}
        finals = list(session.scalars(select(Finals).where(Finals.sweep_id == sweep_id)))
        built = [r for r in rows if r.state == "built" and (jobs.get(r.job_id) is None
                                                            or jobs[r.job_id].status != "cancelled")]
        reused = sum(1 for r in built if jobs.get(r.job_id) is not None and jobs[r.job_id].result_job_id)
        in_flight = sum(1 for r in built if jobs.get(r.job_id) is not None and jobs[r.job_id].status not in FINAL_STATES)
        config = SearchConfig.from_json(search.config)
        reasons: dict[str, int] = {}
        for r in rows:
            if r.state in ("pruned", "skipped"):
                reasons[f"{r.state}: {r.reason}"] = reasons.get(f"{r.state}: {r.reason}", 0) + 1
        history, builds = [], 0
        for r in sorted((r for r in rows if r.step), key=lambda r: (r.step, r.idx)):
            builds += r.state == "built"
            history.append({"step": r.step, "build": builds, "group": r.group_key, "idx": r.idx, "state": r.state,
                            "best_so_far": r.best_so_far,
                            "decided_at": r.decided_at.isoformat(timespec="seconds") if r.decided_at else None})
        return {
            "strategy": search.strategy, "state": search.state, "objective": config.objective,
            "constraints": config.constraints, "space": search.space_size, "budget": search.budget,
            "built": len(built) - reused, "reused": reused, "in_flight": in_flight,
            "pruned": sum(1 for r in rows if r.state == "pruned"),
            "skipped": sum(1 for r in rows if r.state == "skipped"),
            "open": sum(1 for r in rows if r.state == "open"),
            "saving": f"{len(built) - reused} of {search.space_size} configurations built",
            "reasons": reasons, "history": history,
            "finals": [{"id": f.id, "device_class": f.device_class, "status": f.status, "jobs": f.job_ids,
                        "error": f.error, "tuned": (f.result or {}).get("tuned", [])} for f in finals],
            "result": search.result or {},
        }


def is_searching(session, sweep_id: str) -> str | None:
    search = session.get(Search, sweep_id)
    return None if search is None or search.state == "finished" else search.state
