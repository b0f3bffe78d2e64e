"""Builds the Python module with CMake for `pip install --no-build-isolation .` (pyproject.toml has the metadata).

The module (_robustlens) is compiled against the LibTorch of the torch that the installing interpreter imports
(its torch.utils.cmake_prefix_path, where that exists; Debian's python3-torch uses libtorch-dev's, which CMake
finds by itself) and for that interpreter (PYTHON_EXECUTABLE). The CMake build folder is one per interpreter and
torch version under build/python-package, or ROBUSTLENS_BUILD_DIR (an existing build, such as scripts/setup.sh's
./build, is reused as it was configured, if it was configured for this interpreter). The audit report's scripts (Vega, Vega-Lite, vega-embed; robustlens/report/web after scripts/setup.sh)
are copied into the package, which points the report at them when imported.
"""

import glob
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.abspath(__file__))
WEB_ASSETS = {"vega": "vega.min.js", "vega-lite": "vega-lite.min.js", "vega-embed": "vega-embed.min.js"}


def cached_python(build_dir):
    """The interpreter a CMake build folder was configured for (None for a new folder)."""
    cache = os.path.join(build_dir, "CMakeCache.txt")
    if not os.path.isfile(cache):
        return None
    with open(cache) as f:
        for line in f:
            if line.startswith("PYTHON_EXECUTABLE:"):
                return line.split("=", 1)[1].strip()
    return "/usr/bin/python3"  # python/CMakeLists.txt's default, which is not cached


def configure(build_dir):
    """A new CMake build folder for the module alone; an existing one stays as it was configured, if it was
    configured for this interpreter (a venv's python is the interpreter it links to)."""
    python = cached_python(build_dir)
    if python is not None:
        if os.path.realpath(python) != os.path.realpath(sys.executable):
            raise RuntimeError(f"the build folder {build_dir} was configured for {python}, not "
                               f"{sys.executable}: name another with ROBUSTLENS_BUILD_DIR, or remove it")
        return
    import torch

    arguments = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                 f"-DPYTHON_EXECUTABLE={sys.executable}", "-DROBUSTLENS_BUILD_TESTS=OFF", "-DROBUSTLENS_BUILD_BENCH=OFF"]
    prefixes = [torch.utils.cmake_prefix_path] if os.path.isdir(torch.utils.cmake_prefix_path) else []
    try:
        import pybind11  # a pip-installed pybind11 brings its CMake files; Debian's pybind11-dev is found anyway

        prefixes.append(pybind11.get_cmake_dir())
    except ImportError:
        pass
    if prefixes:
        arguments.append("-DCMAKE_PREFIX_PATH=" + ";".join(prefixes))
    if shutil.which("ninja"):
        arguments += ["-G", "Ninja"]
    subprocess.run(arguments, check=True)


def build_folder():
    """ROBUSTLENS_BUILD_DIR, or a folder of build/python-package for this interpreter and torch."""
    if os.environ.get("ROBUSTLENS_BUILD_DIR"):
        return os.path.abspath(os.environ["ROBUSTLENS_BUILD_DIR"])
    import torch

    return os.path.join(ROOT, "build", "python-package", f"{sys.implementation.cache_tag}-torch-{torch.__version__}")


class BuildWithCMake(build_py):
    """build_py, plus the CMake-built module and the report's scripts in the package."""

    def run(self):
        package = os.path.join(self.build_lib, "robustlens")
        shutil.rmtree(package, ignore_errors=True)  # nothing of an earlier build (a removed file, old scripts) stays
        super().run()
        build_dir = build_folder()
        configure(build_dir)
        subprocess.run(["cmake", "--build", build_dir, "--target", "robustlens_python", "--parallel",
                        str(os.cpu_count() or 1)], check=True)
        modules = glob.glob(os.path.join(build_dir, "python", "robustlens", "_robustlens*.so"))
        if len(modules) != 1:
            raise RuntimeError(f"expected one _robustlens module in {build_dir}/python/robustlens, found {modules}")
        shutil.copy2(modules[0], package)
        web = os.path.join(ROOT, "robustlens", "report", "web", "node_modules")
        for name, script in WEB_ASSETS.items():
            source = os.path.join(web, name)
            if not os.path.isfile(os.path.join(source, "build", script)):
                print(f"robustlens: {source} is missing (scripts/setup.sh installs it): the audit's HTML report will "
                      "ask for ROBUSTLENS_WEB_ASSETS", file=sys.stderr)
                continue
            target = os.path.join(package, "web", name)
            os.makedirs(os.path.join(target, "build"), exist_ok=True)
            shutil.copy2(os.path.join(source, "package.json"), target)
            shutil.copy2(os.path.join(source, "build", script), os.path.join(target, "build"))


class BinaryDistribution(Distribution):
    """A wheel for this platform and interpreter: the package holds a compiled module."""

    def has_ext_modules(self):
        return True


# setuptools' own folders (build/lib..., build/bdist...) beside the CMake folders, not in a developer's ./build.
setup(cmdclass={"build_py": BuildWithCMake}, distclass=BinaryDistribution,
      options={"build": {"build_base": os.path.join("build", "python-package", "setuptools")}})
