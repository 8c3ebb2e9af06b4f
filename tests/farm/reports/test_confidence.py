import time

import numpy as np

from farm.reports.confidence import median_ci, throughput_ci


def test_matches_a_naive_bootstrap():
    rng = np.random.default_rng(3)
    for n in (10, 11, 64, 301):
        data = rng.gamma(3.0, 1.0, size=n)
        low, high = median_ci([data], resamples=20000)
        naive = np.median(data[rng.integers(0, n, size=(20000, n))], axis=1)
        expected = np.quantile(naive, [0.025, 0.975])
        spread = data.max() - data.min()
        assert abs(low[0] - expected[0]) < 0.03 * spread and abs(high[0] - expected[1]) < 0.03 * spread


def test_seeded_and_independent_of_the_other_rows():
    a, b = list(np.linspace(1, 2, 50)), list(np.linspace(5, 9, 77))
    alone = median_ci([a])
    together = median_ci([b, a, []])
    assert alone[0][0] == together[0][1] and alone[1][0] == together[1][1]
    assert np.isnan(together[0][2])


def test_exact_for_a_constant_sample():
    low, high = median_ci([[3.0] * 20])
    assert (low[0], high[0]) == (3.0, 3.0)


def test_throughput_interval_brackets_the_point_estimate():
    samples = list(np.linspace(9, 11, 101))
    low, high = throughput_ci([samples], [4])
    assert low[0] < 400.0 < high[0]


def test_fast_for_a_thousand_configurations():
    rng = np.random.default_rng(1)
    data = [rng.gamma(3, 1, size=int(rng.integers(500, 3000))) for _ in range(1000)]
    start = time.perf_counter()
    median_ci(data)
    assert time.perf_counter() - start < 2.0
