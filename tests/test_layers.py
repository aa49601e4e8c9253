"""The flow points one way: the import-linter layers contract holds, and an upward import breaks it.

The contract is pyproject.toml's [tool.importlinter] (docs/ARCHITECTURE.md, "Packages and
layers"). The second test proves the contract has teeth: the same check run on a copy of the
package with one forbidden import added fails and names that import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(contract: Path, source_root: Path) -> subprocess.CompletedProcess[str]:
    """Check ``contract`` against the ``twentyday`` package found under ``source_root``."""
    # The caller's PYTHONPATH goes after the copy's, so the copy is the package analysed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source_root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(contract)], capture_output=True,
                          text=True, timeout=120, cwd=contract.parent, env=env)


def test_the_real_tree_keeps_the_layers_contract() -> None:
    result = lint_imports(ROOT / "pyproject.toml", ROOT / "daemon")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " kept, 0 broken" in result.stdout
    assert "Stages of the flow import only downwards KEPT" in result.stdout


@pytest.mark.parametrize(("module", "added", "reported"), [
    # a stage importing its consumer: the store reaching up to the command line
    ("store/words.py", "import twentyday.cli", "twentyday.store.words -> twentyday.cli"),
    # two sources of one layer that must stay independent: intake reaching into the pipeline
    ("intake/folders.py", "from twentyday.pipeline import process",
     "twentyday.intake.folders -> twentyday.pipeline.process"),
    # inside the store: the writer reaching back into the archive that drives it (the old cycle)
    ("store/writer.py", "from twentyday.store import archive", "twentyday.store.writer -> twentyday.store.archive"),
])
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str, added: str, reported: str) -> None:
    package = tmp_path / "src" / "twentyday"
    shutil.copytree(ROOT / "daemon" / "twentyday", package, ignore=shutil.ignore_patterns("__pycache__"))
    target = package / module
    text = target.read_text()
    future = "from __future__ import annotations\n"
    assert future in text, f"{module} no longer starts with the __future__ import this test places after"
    target.write_text(text.replace(future, f"{future}\n{added}\n", 1))
    contract = tmp_path / "pyproject.toml"  # the [tool.importlinter] section, as the project keeps it
    shutil.copyfile(ROOT / "pyproject.toml", contract)

    result = lint_imports(contract, tmp_path / "src")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert reported in result.stdout, result.stdout
