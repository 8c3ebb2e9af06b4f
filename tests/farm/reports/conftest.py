from fixtures import farm_home, known  # noqa: F401
