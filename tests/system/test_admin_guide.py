"""The README's commands do what the README says: the two commands, and the guide's install.

Each runs in a copy of the working tree (the files a clone would have), so nothing here depends on
this checkout's own .venv or build leftovers.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_PORT = 2525  # the port 'twentyday init' writes and the README names


def readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", readme, re.S | re.M)
    assert match is not None, f"README has no section '{title}'"
    return match.group(1)


def first_block(section: str) -> list[str]:
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None
    return [line for line in match.group(1).splitlines() if line.strip()]


def clone(destination: Path) -> Path:
    """The working tree's files as a fresh clone has them (tracked and new, nothing ignored)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_two_commands_are_the_scripts_and_say_what_the_scripts_do() -> None:
    lines = first_block(readme_section("Two commands"))
    commands = {line.split("#")[0].strip(): line.split("#", 1)[1].strip() for line in lines}
    assert list(commands) == ["./scripts/demo", "./scripts/test"]
    for command, claim in commands.items():
        script = ROOT / command
        assert os.access(script, os.X_OK), command
        text = script.read_text()
        # Every command the README's comment quotes, and every tool it names, is in the script.
        for quoted in re.findall(r"'([^']+)'", claim):
            assert quoted.replace("twentyday ", ".venv/bin/twentyday ") in text or quoted in text, quoted
        for tool in re.findall(r"\b(ruff|mypy|lint-imports|pytest|chromium|7zip|age)\b", claim):
            assert tool in text, (command, tool)
    assert "exec ./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_scripts_demo_in_a_fresh_copy_runs_the_daemon_on_a_demo_archive(tmp_path: Path) -> None:
    if port_taken(DEMO_PORT):
        pytest.skip(f"127.0.0.1:{DEMO_PORT} is taken by another program; the demo listens there")
    tree = clone(tmp_path / "clone")
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(["./scripts/demo"], cwd=tree, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    try:
        deadline = time.monotonic() + 300  # a venv and an install first
        while "ledger head" not in (tmp_path / "demo.log").read_text():
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
            time.sleep(0.5)
        assert port_taken(DEMO_PORT)  # the forwarding address of the README
        assert (tree / "demo" / "inbox" / "jdoe").is_dir()
        found = subprocess.run([str(tree / ".venv" / "bin" / "twentyday"), "--config", "demo/twentyday.toml",
                                "search"], cwd=tree, capture_output=True, text=True, timeout=60)
        assert found.returncode == 0, found.stderr
        assert sorted(re.findall(r"\b(copied|on_time|late)\b", found.stdout)) == ["copied", "late", "on_time"]
    finally:
        os.killpg(demo.pid, signal.SIGTERM)  # the script exec'd serve: SIGTERM stops it, as Ctrl-C would
        code = demo.wait(60)
        log.close()
    assert code == 0, (tmp_path / "demo.log").read_text()


def test_the_guides_install_builds_a_wheel_and_installs_it_into_a_venv(tmp_path: Path) -> None:
    block = first_block(readme_section("Install"))
    build, install = block[0].split("#")[0].strip(), block[1].split("#")[0].strip()
    assert build == "python3 -m pip wheel --no-deps -w dist ."
    assert install.startswith("python3 -m venv /opt/twentyday && /opt/twentyday/bin/pip install dist/")
    tree = clone(tmp_path / "clone")
    prefix = tmp_path / "opt" / "twentyday"
    script = f"{build}\n{install.replace('/opt/twentyday', str(prefix))}\n"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tree, capture_output=True, text=True,
                          timeout=600, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = [p.name for p in (tree / "dist").iterdir()]
    assert len(wheels) == 1 and re.fullmatch(r"twentyday-[\d.]+-py3-none-any\.whl", wheels[0]), wheels
    helped = subprocess.run([str(prefix / "bin" / "twentyday"), "--help"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert re.search(r"^\s+backup\s", helped.stdout, re.M)
    # The units the guide copies, naming the path the guide links the script to.
    assert "ExecStart=/usr/local/bin/twentyday serve" in (ROOT / "systemd" / "twentyday.service").read_text()
