"""Smart search over a sweep's configurations (issue 15): strategies, pruning,
screening, drift-free finals. Light modules only: nothing here imports
device libraries."""
