"""The package as users get it: a wheel built from the repository, installed in a fresh venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True,
    )
    (found,) = out.glob("tuiplayer-*.whl")
    return found


@pytest.mark.slow
def test_wheel_carries_the_models_folder(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "models").rglob("*") if p.is_file()}
    assert shipped, "the repository has a models/ folder"
    for name in shipped:
        assert "tuiplayer/_" + name in names
    assert "tuiplayer/py.typed" in names


@pytest.mark.slow
def test_installed_wheel_finds_its_models(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    # the fresh venv has our wheel only; its dependencies come from this test's environment,
    # appended after the venv's own site-packages so the wheel's tuiplayer is the one imported
    deps = sysconfig.get_paths()["purelib"]
    script = (
        f"import sys; sys.path.append({deps!r})\n"
        "import json, tuiplayer, tuiplayer.modelstore as m\n"
        "print(json.dumps({'package': tuiplayer.__file__, 'root': str(m.models_root()),"
        " 'index': m.read_index()}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TUIPLAYER_MODELS", "PYTHONPATH")}
    result = subprocess.run([python, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["package"].startswith(str(env_dir))
    assert found["root"].startswith(str(env_dir)) and found["root"].endswith("tuiplayer/_models")
    assert found["index"] == json.loads((REPO / "models" / "index.json").read_text())
