"""The package as a user gets it: the sdist and the wheel build, pass ``twine check``,
install into a clean virtualenv, import with no extras, and run the command with ``[cli]``.

Built without build isolation (hatchling comes from the development tools), so that the
only downloads are the extras' own dependencies, which pip's cache usually holds.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import poolwarden

ROOT = Path(__file__).resolve().parents[2]
NAME = f"poolwarden-{poolwarden.__version__}"


def sh(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    sh(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return out


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    built = sorted(p.name for p in dist.iterdir())
    assert built == [f"{NAME}-py3-none-any.whl", f"{NAME}.tar.gz"]
    report = sh(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    assert report.count("PASSED") == 2


def test_wheel_carries_the_package_typed_and_licensed(dist: Path) -> None:
    with zipfile.ZipFile(dist / f"{NAME}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"{NAME}.dist-info/METADATA").decode()
    assert "poolwarden/py.typed" in names and "poolwarden/sqlalchemy/__init__.py" in names
    assert f"{NAME}.dist-info/licenses/LICENSE" in names
    assert not any(name.startswith(("tests/", "benchmarks/", "scripts/")) for name in names)
    assert "License-Expression: MIT" in metadata and "Project-URL: Source, " in metadata
    assert "Classifier: Typing :: Typed" in metadata and "Requires-Python: >=3.10" in metadata
    assert "Provides-Extra: cli" in metadata and "Provides-Extra: sqlalchemy" in metadata


def test_sdist_builds_a_wheel_on_its_own(dist: Path, tmp_path: Path) -> None:
    with tarfile.open(dist / f"{NAME}.tar.gz") as sdist:
        members = {m.name.removeprefix(f"{NAME}/") for m in sdist.getmembers()}
        sdist.extractall(tmp_path, filter="data")
    assert {"LICENSE", "README.md", "pyproject.toml", "src/poolwarden/py.typed"} <= members
    assert "tests/conftest.py" in members and not any(m.startswith("scripts/") for m in members)
    rebuilt = tmp_path / "rebuilt"
    sh(sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", rebuilt,
       tmp_path / NAME)  # fmt: skip
    assert [p.name for p in rebuilt.iterdir()] == [f"{NAME}-py3-none-any.whl"]


def test_wheel_installs_into_a_clean_virtualenv(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    python, wheel = venv / "bin" / "python", dist / f"{NAME}-py3-none-any.whl"
    sh(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    # No extras: the pool imports with no driver, SQLAlchemy or CLI library installed.
    probe = (
        "import importlib.resources, poolwarden, sys; "
        "print(poolwarden.__version__, importlib.resources.files('poolwarden').joinpath("
        "'py.typed').is_file(), 'sqlalchemy' in sys.modules, poolwarden.__file__)"
    )
    version, typed, sqlalchemy_loaded, where = sh(python, "-c", probe, cwd=tmp_path).split()
    assert (version, typed, sqlalchemy_loaded) == (poolwarden.__version__, "True", "False")
    assert where.startswith(str(venv))  # the installed copy, not this checkout's
    sh(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[cli]")
    usage = sh(venv / "bin" / "poolwarden", "--help", cwd=tmp_path)
    assert usage.startswith("Usage: poolwarden") and all(
        c in usage for c in ("demo", "doctor", "size")
    )
