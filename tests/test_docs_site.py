"""The documentation site: ``mkdocs build --strict`` passes, and fails on a broken link.

``.ci/run`` builds it the same way; README.md's links into docs/ resolve too.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

pytest.importorskip("mkdocs", reason="mkdocs comes with the dev extra")


def build(config, site):
    # NOTE: never --quiet: it hides the warnings that --strict counts, and
    # the build then passes with a broken link (MkDocs 1.6).
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"]
        + ["--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_site_builds_strictly(tmp_path):
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "project" / "index.html").is_file()


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    config = tmp_path / "mkdocs.yml"
    config.write_text((ROOT / "mkdocs.yml").read_text())
    page = docs / "project.md"
    good = page.read_text()
    for broken in ("[gone](no-such-page.md)", "[gone](cli.md#no-such-anchor)"):
        page.write_text(f"{good}\n{broken}\n")
        result = build(config, tmp_path / "site")
        output = result.stdout + result.stderr
        assert result.returncode != 0, broken
        assert "Aborted with 1 warnings in strict mode" in output
        assert broken.split("(")[1].rstrip(")") in output


def test_the_readmes_links_resolve():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert "docs/project.md" in targets
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert missing == []


def test_read_the_docs_builds_the_site_as_ci_does():
    """The package's Documentation link is built from .readthedocs.yaml."""
    import tomllib

    import yaml

    config = yaml.safe_load((ROOT / ".readthedocs.yaml").read_text())
    assert config["version"] == 2
    assert config["mkdocs"] == {"configuration": "mkdocs.yml", "fail_on_warning": True}
    (install,) = config["python"]["install"]
    assert install["method"] == "pip" and install["path"] == "."
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    docs_requirements = [
        requirement
        for extra in install["extra_requirements"]
        for requirement in extras[extra]
    ]
    assert any(requirement.startswith("mkdocs") for requirement in docs_requirements)
    site_url = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["site_url"]
    assert site_url == project["urls"]["Documentation"]
