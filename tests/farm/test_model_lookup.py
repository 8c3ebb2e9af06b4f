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


def test_an_external_data_model_is_found_by_its_graph_file(farm_home, tmp_path, tiny_cnn):
    """A graph whose weights live in a side file is one model, hashed as graph + data at submit:
    `farm best models/det.onnx` finds it by the same identity, not by the graph file's own hash."""
    from tests.farm.test_model_bundle import external_model
    from farm.model_info import read_model

    graph = external_model(tmp_path / "ext", tiny_cnn)
    identity = read_model(graph).sha256
    with session_scope() as session:
        session.add(Model(sha256=identity, name="det.onnx", path=str(graph), size_bytes=1, inputs=[]))
    with session_scope() as session:
        assert resolve_model(session, str(graph)).sha256 == identity
    # The plain file (no side data) is not that model.
    with session_scope() as session, pytest.raises(NotFoundError, match="no results for model"):
        resolve_model(session, str(tiny_cnn))
