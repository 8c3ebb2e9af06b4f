"""The report views, named once for the CLI (``farm report --view``), the
HTML report and the dashboard (``?view=``). ``speedup`` was called
``compare`` (a word ``farm compare`` uses for two sweeps); the old name is
still taken."""

VIEWS = ("jobs", "speedup", "cross-device")
VIEW_ALIASES = {"compare": "speedup"}


def canonical_view(view: str) -> str:
    return VIEW_ALIASES.get(view, view)
