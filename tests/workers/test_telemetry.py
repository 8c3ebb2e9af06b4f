"""Telemetry judgement from recorded NVML samples (no GPU needed)."""

from __future__ import annotations

import pynvml
import pytest

from workers.telemetry import Sample, decode_reasons, flags_for, neighbours, reason_bits, summarize

IDLE = pynvml.nvmlClocksEventReasonGpuIdle
APP_CLOCKS = pynvml.nvmlClocksEventReasonApplicationsClocksSetting
POWER = pynvml.nvmlClocksEventReasonSwPowerCap
THERMAL = pynvml.nvmlClocksEventReasonSwThermalSlowdown
HW = pynvml.nvmlClocksEventReasonHwSlowdown
BRAKE = pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown


def samples(*reasons, pids=(100,)):
    return [Sample(t=i * 0.05, sm_clock_mhz=1980 - 10 * i, mem_clock_mhz=2619, temperature_c=40 + i,
                   power_w=300.0 + i, gpu_util_pct=100, reasons=r, pids=pids) for i, r in enumerate(reasons)]


def test_reason_names_come_from_pynvml():
    bits = reason_bits()
    assert bits["GpuIdle"] == IDLE and bits["SwPowerCap"] == POWER
    assert decode_reasons(IDLE | POWER) == ["GpuIdle", "SwPowerCap"]
    assert decode_reasons(0) == []


def test_unknown_bits_are_reported_not_dropped():
    spare = 1 << 40
    assert decode_reasons(spare | HW) == ["HwSlowdown", f"unknown({spare:#x})"]


def test_benign_reasons_raise_no_flag():
    summary = summarize(samples(IDLE, APP_CLOCKS, 0), own_pids={100})
    assert summary["clocks_event_reasons"] == {"ApplicationsClocksSetting": pytest.approx(1 / 3, abs=1e-3),
                                               "GpuIdle": pytest.approx(1 / 3, abs=1e-3)}
    assert flags_for(summary) == []


@pytest.mark.parametrize("mask, expected", [
    (POWER, ["throttled-power"]),
    (THERMAL, ["throttled-thermal"]),
    (HW, ["hw-slowdown"]),
    (BRAKE, ["throttled-power", "hw-slowdown"]),
    (POWER | THERMAL, ["throttled-power", "throttled-thermal"]),
])
def test_slowdowns_raise_flags(mask, expected):
    assert sorted(flags_for(summarize(samples(0, mask, 0), own_pids={100}))) == sorted(expected)


def test_summary_statistics():
    summary = summarize(samples(0, 0, 0, 0), own_pids={100})
    assert summary["samples"] == 4
    assert summary["sm_clock_mhz"] == {"min": 1950, "median": 1965.0, "max": 1980}
    assert summary["temperature_c"]["max"] == 43
    assert summary["span_s"] == pytest.approx(0.15)


def test_other_process_is_a_neighbour():
    summary = summarize(samples(0, 0, pids=(100, 4242)), own_pids={100, 101})
    assert summary["neighbour_pids"] == [4242] and summary["pids_matched"] is True
    assert flags_for(summary) == ["neighbour-process"]


def test_own_processes_alone_are_no_neighbours():
    assert neighbours([(100,), (100, 101)], {100, 101}) == ([], True)


def test_other_pid_namespace_counts_processes():
    # NVML lists host pids our process cannot match: one process is us,
    # two or more mean someone else is on the GPU.
    assert neighbours([(7,), (7,)], {100}) == ([], False)
    assert neighbours([(7,), (7, 9)], {100}) == ([7, 9], False)


def test_unavailable_telemetry_raises_no_flags():
    assert flags_for({"available": False, "reason": "NVML unavailable"}) == []
