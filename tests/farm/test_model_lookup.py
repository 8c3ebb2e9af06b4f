"""``farm best MODEL`` / ``farm fetch MODEL`` name a model by file, exact
name or sha256 prefix; no LIKE wildcard ('%', '_') can widen the match."""

from __future__ import annotations

import pytest

from farm.db import Model, session_scope
from farm.errors import NotFoundError
from farm.reports.rows import resolve_model

DET = "ab12" + "0" * 60
XY = "cd34" + "1" * 60


@pytest.fixture
def models(farm_home):
    with session_scope() as session:
        session.add_all([Model(sha256=DET, name="det.onnx", path="/m/det.onnx", size_bytes=1, inputs=[]),
                         Model(sha256=XY, name="x_y.onnx", path="/m/x_y.onnx", size_bytes=1, inputs=[])])


@pytest.mark.parametrize("query, expected", [
    ("det.onnx", DET), ("x_y.onnx", XY), ("ab12", DET), ("AB12", DET), (DET, DET), ("cd341111", XY),
])
def test_names_and_hex_prefixes_match(models, query, expected):
    with session_scope() as session:
        assert resolve_model(session, query).sha256 == expected


@pytest.mark.parametrize("query", ["%", "_", "%%", "ab%", "ab1_", "a%", "det%", "x%y.onnx", "xay.onnx", "x_y%",
                                   "%.onnx", "\\%", "ab", "ab12\x00", ""])
def test_wildcards_and_fragments_match_nothing(models, query):
    with session_scope() as session, pytest.raises(NotFoundError, match="no results for model"):
        resolve_model(session, query)
