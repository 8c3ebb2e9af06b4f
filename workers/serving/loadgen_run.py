"""MLPerf LoadGen scenarios against the batching server (workers.serving.server).

LoadGen (``mlperf_loadgen``) issues the queries, times them and judges the
run: its detail log's ``result_*`` entries are read back as the result,
with its own validity (minimum duration, minimum query count, early
stopping, and for Server the p99 bound), and its summary text is kept.

Server: with ``target_qps`` given, each is run; otherwise the highest valid
QPS is searched: start near the Offline throughput (or the fixed-batch
figure), go up by half while valid, down by half while invalid, then
bisect between the highest valid and the lowest invalid load. Every run is
kept (the latency-vs-offered-load curve); only a VALID one can be the
sustained load.

LoadGen pre-generates its queries from the expected rate or latency: a run
that ended short of its minimum duration because that estimate was off is
repeated once with the rate it measured (``attempts`` counts them).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

from workers.energy import EnergyMeter, per_inference
from workers.serving.server import BatchingServer, Request, SamplePool

ORDER = ("single_stream", "multi_stream", "offline", "server")
_NAMES = {"single_stream": "SingleStream", "multi_stream": "MultiStream", "server": "Server", "offline": "Offline"}


def read_detail(path: Path) -> dict:
    """The ``:::MLLOG`` entries of LoadGen's detail log, key -> value (last wins)."""
    entries = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            try:
                entry = json.loads(line[len(":::MLLOG "):])
            except ValueError:
                continue
            entries[entry.get("key")] = entry.get("value")
    return entries


def _ms(value) -> float | None:
    return value / 1e6 if isinstance(value, (int, float)) else None


def result_from(entries: dict, scenario: str) -> dict:
    """A run's result from its detail-log entries (latencies in ms)."""
    per_query = scenario == "multi_stream"

    def latency(pct: str):
        key = f"result_{pct}_percentile_per_query_latency_ns" if per_query else f"result_{pct}_percentile_latency_ns"
        return _ms(entries.get(key))

    return {
        "validity": entries.get("result_validity"),
        "invalid_reason": (entries.get("result_invalid_reason") or "").strip() or None,
        "min_duration_met": entries.get("result_min_duration_met"),
        "min_queries_met": entries.get("result_min_queries_met"),
        "early_stopping_met": entries.get("early_stopping_met"),
        "perf_constraints_met": entries.get("result_perf_constraints_met"),
        "early_stopping": " ".join((entries.get("early_stopping_result") or "").split()) or None,
        "query_count": entries.get("result_query_count"),
        "samples_per_query": entries.get("effective_samples_per_query"),
        "p50_ms": latency("50.00"), "p90_ms": latency("90.00"), "p99_ms": latency("99.00"),
        "p999_ms": latency("99.90"),
        "mean_ms": _ms(entries.get("result_mean_query_latency_ns" if per_query else "result_mean_latency_ns")),
        "max_ms": _ms(entries.get("result_max_latency_ns")),
        "completed_samples_per_s": entries.get("result_completed_samples_per_sec"),
        "scheduled_samples_per_s": entries.get("result_scheduled_samples_per_sec"),
        "samples_per_s": (entries.get("result_samples_per_second")
                          or entries.get("result_qps_without_loadgen_overhead")),
        "target_qps": entries.get("effective_target_qps") if scenario == "server" else None,
        "target_latency_ms": _ms(entries.get("effective_target_latency_ns")) if scenario == "server" else None,
        "loadgen_version": entries.get("loadgen_version"),
    }


class ScenarioRunner:
    """Runs the job's scenarios on one loaded engine; ``run()`` -> the stored result."""

    def __init__(self, executors: list, pool: SamplePool, *, run_batch: int, serving: dict, outdir: Path,
                 device_uuid: str | None, estimate_qps: float, call_ms: float | None = None):
        self.executors, self.pool, self.run_batch, self.serving = executors, pool, run_batch, serving
        self.outdir, self.device_uuid = outdir, device_uuid
        self.estimate_qps = max(estimate_qps, 1.0)
        # A served query pays a whole (padded) engine call plus the server's own work: LoadGen's first
        # expected latency. Too high only shortens the run (it is repeated once with the measured rate).
        self.query_ms = (call_ms or 1000.0 * run_batch / self.estimate_qps) * 1.5 + 0.2
        self.summaries: dict[str, str] = {}  # run name -> LoadGen's summary text

    def run(self) -> dict:
        import mlperf_loadgen

        results: dict[str, dict] = {}
        for scenario in (s for s in ORDER if s in self.serving["run"]):
            if scenario == "server":
                results[scenario] = self._server(results)
            else:
                results[scenario] = self._until_long_enough(scenario)
        return {"scenarios": results, "loadgen_version": mlperf_loadgen.__version__ if hasattr(
            mlperf_loadgen, "__version__") else _version(results), "max_batch": self.run_batch,
            "queue_delay_us": self.serving["queue_delay_us"], "instances": self.serving["instances"],
            "sample_pool": self.pool.size}

    # ---- one LoadGen test -------------------------------------------------------------------------

    def _first_rate(self, scenario: str) -> float:
        """LoadGen's expected rate (queries or samples per second) before anything was served."""
        if scenario == "single_stream":
            return 1000.0 / self.query_ms
        if scenario == "multi_stream":  # samples/s: a query of k samples takes ceil(k / batch) calls
            calls = -(-int(self.serving["samples_per_query"]) // self.run_batch)
            return 1000.0 * int(self.serving["samples_per_query"]) / (calls * self.query_ms)
        return self.estimate_qps

    def _until_long_enough(self, scenario: str) -> dict:
        result = self._test(scenario, self._settings(scenario, self._first_rate(scenario)), scenario)
        if result["min_duration_met"] is False and result.get("measured_qps"):
            result = self._test(scenario, self._settings(scenario, result["measured_qps"] * 1.2), scenario)
            result["attempts"] = 2
        return result

    def _settings(self, scenario: str, rate_qps: float, target_qps: float | None = None):
        import mlperf_loadgen as lg

        cfg = self.serving
        settings = lg.TestSettings()
        settings.scenario = getattr(lg.TestScenario, _NAMES[scenario])
        settings.mode = lg.TestMode.PerformanceOnly
        settings.min_duration_ms = int(cfg["min_duration_ms"])
        settings.min_query_count = int(cfg["min_query_count"])
        if cfg.get("max_duration_ms"):
            settings.max_duration_ms = int(cfg["max_duration_ms"])
        if cfg.get("max_query_count"):
            settings.max_query_count = int(cfg["max_query_count"])
        if scenario == "single_stream":
            settings.single_stream_expected_latency_ns = int(1e9 / rate_qps)
        elif scenario == "multi_stream":
            settings.multi_stream_samples_per_query = int(cfg["samples_per_query"])
            settings.multi_stream_expected_latency_ns = int(1e9 * cfg["samples_per_query"] / rate_qps)
        elif scenario == "offline":
            settings.offline_expected_qps = float(rate_qps)
        else:
            settings.server_target_qps = float(target_qps or rate_qps)
            settings.server_target_latency_ns = int(cfg["p99_ms"] * 1e6)
        return settings

    def _test(self, scenario: str, settings, name: str) -> dict:
        import mlperf_loadgen as lg

        outdir = self.outdir / name
        outdir.mkdir(parents=True, exist_ok=True)
        samples_done = [0]
        counter = threading.Lock()

        def complete(requests: list[Request]) -> None:
            with counter:
                samples_done[0] += len(requests)
            lg.QuerySamplesComplete([lg.QuerySampleResponse(r.request_id, 0, 0) for r in requests])

        server = BatchingServer(self.executors, self.pool, max_batch=self.run_batch, run_batch=self.run_batch,
                                queue_delay_us=int(self.serving["queue_delay_us"]), complete=complete)

        def issue(query_samples) -> None:
            # Runs inside LoadGen's thread: it must not raise (LoadGen cannot unwind an exception).
            requests = [Request(q.id, q.index % self.pool.size) for q in query_samples]
            if not server.submit(requests):
                complete(requests)  # the engine failed: end the run; the error is raised after it

        sut = lg.ConstructSUT(issue, lambda: None)
        qsl = lg.ConstructQSL(self.pool.size, self.pool.size, lambda _s: None, lambda _s: None)
        log = lg.LogSettings()
        log.log_output.outdir = str(outdir)
        log.log_output.copy_summary_to_stdout = False
        log.enable_trace = False
        meter = EnergyMeter(self.device_uuid)
        start = time.perf_counter()
        meter.start()
        try:
            lg.StartTestWithLogSettings(sut, qsl, settings, log)
        finally:
            meter.stop()
            wall_s = time.perf_counter() - start
            server.stop()
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
        if server.error is not None:
            raise RuntimeError(f"the {scenario} run failed in the engine: {server.error}") from server.error
        result = result_from(read_detail(outdir / "mlperf_log_detail.txt"), scenario)
        summary = outdir / "mlperf_log_summary.txt"
        self.summaries[name] = summary.read_text(errors="replace") if summary.exists() else ""
        result["wall_s"] = round(wall_s, 3)
        result["measured_qps"] = samples_done[0] / wall_s if wall_s > 0 else None
        result["server"] = server.stats(wall_s)
        result["energy"] = per_inference(meter.reading(), samples_done[0])
        return result

    # ---- Server: the highest valid QPS ------------------------------------------------------------

    def _server(self, results: dict) -> dict:
        given = self.serving.get("target_qps") or []
        runs: list[dict] = []
        if given:
            for qps in given:
                runs.append(self._server_run(qps))
        else:
            offline = results.get("offline") or {}
            start = offline.get("samples_per_s") or self.estimate_qps
            runs = search_qps(self._server_run, float(start) * 0.8, int(self.serving.get("search_steps", 6)))
        best = max((r for r in runs if r["validity"] == "VALID"), key=lambda r: r["target_qps"], default=None)
        out = dict(best or min(runs, key=lambda r: r["target_qps"]))
        out["runs"] = [{k: r.get(k) for k in ("target_qps", "validity", "p99_ms", "p50_ms",
                                               "completed_samples_per_s", "early_stopping_met",
                                               "perf_constraints_met", "min_duration_met", "min_queries_met",
                                               "invalid_reason", "server", "energy", "summary")} for r in runs]
        out["best_valid_qps"] = best["target_qps"] if best else None
        out["p99_bound_ms"] = self.serving["p99_ms"]
        out["searched"] = not given
        return out

    def _server_run(self, qps: float) -> dict:
        name = f"server-{qps:.6g}qps"
        result = self._test("server", self._settings("server", qps, target_qps=qps), name)
        result["target_qps"] = qps
        result["summary"] = name
        return result


def search_qps(run: Callable[[float], dict], start: float, steps: int) -> list[dict]:
    """Up by half while valid, down by half while invalid, then bisect; ``steps`` runs at most."""
    runs: list[dict] = []
    low = high = None  # highest valid, lowest invalid
    qps = max(start, 1.0)
    for _ in range(steps):
        result = run(round(qps, 3))
        runs.append(result)
        if result["validity"] == "VALID":
            low = qps if low is None else max(low, qps)
        else:
            high = qps if high is None else min(high, qps)
        if low is not None and high is not None:
            if high / low < 1.05:
                break
            qps = (low + high) / 2
        else:
            qps = qps * 1.5 if high is None else qps / 2
    return runs


def _version(results: dict) -> str | None:
    for result in results.values():
        if result.get("loadgen_version"):
            return result["loadgen_version"]
    return None
