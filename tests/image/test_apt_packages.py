"""renderer-image/apt-packages.txt is the one list for the image and the host: it is installed on
this Debian host, and WeasyPrint renders a PDF whose native libraries all come from those packages
(or what they depend on) and whose fonts come from the list. test_built_image.py checks the image
itself, built from the Dockerfile by buildah."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tidings_dev.cluster import REPO_ROOT

PACKAGE_LIST = REPO_ROOT / "renderer-image" / "apt-packages.txt"

# Runs in a fresh interpreter: records the shared objects mapped before WeasyPrint is imported and
# after it rendered, so only what WeasyPrint itself loaded is compared with the package list.
PROBE = r"""
import json, sys
def mapped():
    with open("/proc/self/maps") as maps:
        return {line.split()[-1] for line in maps if ".so" in line.split()[-1]}
before = mapped()
import weasyprint
weasyprint.HTML(string="<h1>Tidings</h1><p>Grüße — page 1</p>").write_pdf(sys.argv[1])
print(json.dumps({"loaded": sorted(mapped() - before), "prefix": sys.base_prefix}))
"""


def interpreter_libraries(prefix: str) -> set[str]:
    """What CPython's own extension modules link to (libssl for ssl, libuuid for uuid, ...):
    the base image provides those with Python, so they are not WeasyPrint's to list."""
    linked: set[str] = set()
    for module in Path(prefix).glob("lib/python3*/lib-dynload/*.so"):
        out = subprocess.run(["ldd", str(module)], capture_output=True, text=True).stdout
        linked |= {Path(p).resolve().as_posix() for p in re.findall(r"=> (/\S+)", out)}
    return linked


def listed_packages() -> list[str]:
    return [
        line.strip()
        for line in PACKAGE_LIST.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def dependency_closure(packages: list[str]) -> set[str]:
    out = subprocess.run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--installed",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            *packages,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split(":")[0] for line in out.splitlines() if line and not line.startswith(" ")}


def owning_package(path: str) -> str | None:
    found = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    if found.returncode != 0:
        # usrmerge: /lib is /usr/lib, and dpkg knows the file under one of the two names.
        alt = path.removeprefix("/usr") if path.startswith("/usr/lib") else "/usr" + path
        found = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
    if found.returncode != 0:
        return None
    return found.stdout.split(":")[0].strip()


def test_every_listed_package_is_installed() -> None:
    packages = listed_packages()
    assert packages, "renderer-image/apt-packages.txt lists nothing"
    for package in packages:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
        ).stdout
        assert status == "install ok installed", f"{package} from {PACKAGE_LIST.name}: {status!r}"


def test_dockerfile_installs_exactly_that_list() -> None:
    dockerfile = (REPO_ROOT / "renderer-image" / "Dockerfile").read_text()
    assert "COPY renderer-image/apt-packages.txt" in dockerfile
    assert "xargs apt-get install" in dockerfile


def test_weasyprint_renders_with_only_the_listed_libraries(tmp_path: Path) -> None:
    pdf = tmp_path / "probe.pdf"
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(pdf)], capture_output=True, text=True, check=True
    )
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    python_own = interpreter_libraries(result["prefix"])
    system_libs = [
        p
        for p in result["loaded"]
        if p.startswith(("/lib", "/usr/lib")) and Path(p).resolve().as_posix() not in python_own
    ]
    assert any("libpango-1.0" in p for p in system_libs), system_libs
    assert any("libharfbuzz" in p for p in system_libs), system_libs

    allowed = dependency_closure(listed_packages())
    outside = {p: owning_package(p) for p in system_libs}
    outside = {p: pkg for p, pkg in outside.items() if pkg not in allowed}
    assert not outside, f"WeasyPrint loaded libraries from packages not in the list: {outside}"

    assert pdf.read_bytes().startswith(b"%PDF-")
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    assert any(name in fonts.stdout for name in ("DejaVu", "Liberation")), fonts.stdout


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = subprocess.run(
        ["hadolint", str(REPO_ROOT / "renderer-image" / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert hadolint.returncode == 0, hadolint.stdout + hadolint.stderr


@pytest.mark.parametrize("name", ["BASE_IMAGE"])
def test_base_image_is_a_build_argument(name: str) -> None:
    dockerfile = (REPO_ROOT / "renderer-image" / "Dockerfile").read_text()
    assert f"ARG {name}=" in dockerfile and f"FROM ${{{name}}}" in dockerfile
