"""examples/audit_from_python.ipynb runs offline from top to bottom: its code cells in order, in one namespace, with
matplotlib drawing into files (no display), as a kernel would run them.

    PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/python/test_notebook.py
"""

import json
import os

import matplotlib

matplotlib.use("Agg")

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples",
                        "audit_from_python.ipynb")


def test_the_notebook_runs_and_draws_the_margin_curves():
    with open(NOTEBOOK) as f:
        cells = [cell for cell in json.load(f)["cells"] if cell["cell_type"] == "code"]
    namespace = {"__name__": "__main__"}
    for number, cell in enumerate(cells):
        exec(compile("".join(cell["source"]), f"{NOTEBOOK} code cell {number + 1}", "exec"), namespace)
    assert os.path.getsize(os.path.join(namespace["audit"].out, "margins.png")) > 0
    assert os.path.isfile(os.path.join(namespace["audit"].out, "index.html"))
