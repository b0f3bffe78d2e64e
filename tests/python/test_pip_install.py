"""`pip install --no-build-isolation .` into a new virtual environment: the wheel holds the module, the Python files
and the report's scripts; the installed package imports from anywhere and computes what the build's module does.

    ROBUSTLENS_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/python/test_pip_install.py

ROBUSTLENS_BUILD_DIR names a build to reuse (ctest passes its own, so that the test packages what was built rather
than compiling it again); without it setup.py builds into build/python-package.
"""

import json
import os
import subprocess
import sys

import torch

import robustlens

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = """
import json, os, torch, robustlens
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
images = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
norms = robustlens.deepfool(model, images, progress=False)["norms"]
record = robustlens.eval(model, (images, torch.tensor([0, 1, 2, 0, 1, 2])), progress=False, quiet=True)
print(json.dumps({"file": robustlens.__file__, "web": os.environ.get("ROBUSTLENS_WEB_ASSETS"),
                  "norms": norms.tolist(), "accuracy": record["accuracy"]}))
"""


def test_pip_installs_a_package_that_runs_outside_the_checkout(tmp_path):
    venv = tmp_path / "venv"
    # The system's site-packages give the venv Debian's torch (and setuptools for the build).
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # Neither the build's module nor report scripts named from outside: what is found must be the wheel's.
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "ROBUSTLENS_WEB_ASSETS")}
    subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index", "-q", REPO],
                   check=True, env=environment, timeout=3600)
    # The same numbers as the build's module in this process: the wheel must hold that module, not another build.
    run = subprocess.run([python, "-c", SCRIPT], check=True, capture_output=True, text=True, cwd=tmp_path,
                         env=environment)
    installed = json.loads(run.stdout.splitlines()[-1])
    assert installed["file"].startswith(str(venv)), installed["file"]
    assert installed["web"].startswith(str(venv)), installed["web"]
    for script in ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js"):
        assert os.path.isfile(os.path.join(installed["web"], script)), script
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    images = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    assert installed["norms"] == robustlens.deepfool(model, images, progress=False)["norms"].tolist()
    assert installed["accuracy"] == robustlens.eval(model, (images, torch.tensor([0, 1, 2, 0, 1, 2])), progress=False,
                                                    quiet=True)["accuracy"]
