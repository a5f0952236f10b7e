"""``--command-agent NAME=PATH``: what a declaration must be."""

from __future__ import annotations

from pathlib import Path

import pytest

from theazo.command_agents import parse_declaration


def test_a_declaration_names_an_executable_by_its_real_path(tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (tmp_path / "link").symlink_to(script)
    assert parse_declaration(f"mine={tmp_path / 'link'}") == ("mine", str(script))


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nopath", "is not NAME=PATH"),
        ("=/bin/sh", "is not NAME=PATH"),
        ("x=/does/not/exist", "is not a file"),
        ("my-agent=/bin/sh", "is not an agent name"),
    ],
)
def test_a_bad_declaration_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_declaration(spec)


def test_a_file_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    with pytest.raises(ValueError, match=r"is not executable \(chmod \+x\)"):
        parse_declaration(f"x={script}")
