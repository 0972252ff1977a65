"""The notebooks execute without errors (small trajectory counts), so they cannot rot."""
from pathlib import Path

import pytest

from conftest import SESSION_CACHE

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_the_notebooks_exist():
    assert {p.stem for p in NOTEBOOKS} == {"quickstart", "calibration", "scenarios", "questions", "sensitivity"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_show_no_machine_paths(path):
    """The notebooks a reader opens show results, not the builder's file system."""
    import sys

    text = path.read_text()
    for root in {sys.prefix, str(Path.home()), str(Path(__file__).resolve().parents[1])}:
        assert root not in text, root


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("FORECAST_N", "800")
    monkeypatch.setenv("FORECAST_CACHE_DIR", "off")
    # the kernel process loads the programs the session's tests compiled (conftest)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", SESSION_CACHE)
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
