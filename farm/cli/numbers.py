"""Numbers a flag takes: finite, and at least a minimum. click's
FloatRange lets nan and inf through (a --min-change of nan compared as
never, inf as always), and float() takes them from any CLI value."""

from __future__ import annotations

import math

import click


class FiniteFloat(click.ParamType):
    """A finite float >= ``minimum`` (when given)."""

    name = "number"

    def __init__(self, minimum: float | None = None):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"{value!r} is below the minimum of {self.minimum:g}", param, ctx)
        return number

