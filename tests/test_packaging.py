"""The conda environment files and the pip requirements must list the same packages."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch", "matplotlib-base": "matplotlib", "pytorch-cpu": "torch"}
NOT_PACKAGES = {"python", "pip"}


def norm(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def env_packages(path):
    """{name: spec} of an environment file's conda and pip dependencies (pip options skipped)."""
    env = yaml.safe_load(path.read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for req in dep.get("pip", []):
                if not req.startswith("-"):
                    out[norm(req)] = req
        else:
            name = CONDA_TO_PIP.get(norm(dep), norm(dep))
            if name not in NOT_PACKAGES:
                out[name] = dep
    return out


def expected():
    p = pyproject()
    return {norm(r) for r in p["dependencies"] + p["optional-dependencies"]["dev"]}


@pytest.mark.parametrize("envfile", ["environment.yml", "binder/environment.yml"])
def test_environment_files_list_the_pyproject_packages(envfile):
    got = env_packages(ROOT / envfile)
    assert set(got) == expected(), f"{envfile} drifted: missing {expected() - set(got)}, extra {set(got) - expected()}"


@pytest.mark.parametrize("envfile", ["environment.yml", "binder/environment.yml"])
def test_torch_is_the_pinned_cpu_build_everywhere(envfile):
    pin = next(line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("torch"))
    assert env_packages(ROOT / envfile)["torch"].replace(" ", "") == pin
    assert "download.pytorch.org/whl/cpu" in (ROOT / envfile).read_text()


def test_binder_installs_the_package_in_postbuild_not_in_the_environment():
    env = (ROOT / "binder" / "environment.yml").read_text()
    assert "-e ." not in env and "tpslab" not in env_packages(ROOT / "binder" / "environment.yml")
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install" in post and "tpslab mini" in post


def test_console_script_and_module_entry_point():
    assert pyproject()["scripts"]["tpslab"] == "tpslab.cli:main"
    out = subprocess.run([sys.executable, "-m", "tpslab", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "mini" in out.stdout and "validate" in out.stdout


def test_import_is_light():
    """Importing tpslab must not pull in torch, video decoders or plotting."""
    code = ("import sys, tpslab; heavy = [m for m in ('torch', 'decord', 'av', 'matplotlib', 'pandas') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# Where workshops run: what each platform gets (issue 9, section 8)
PLATFORMS = {  # name: (marker environment, whether decord2 has a wheel there for CPython 3.11)
    "linux x86_64": ({"sys_platform": "linux", "platform_machine": "x86_64"}, True),
    "linux aarch64": ({"sys_platform": "linux", "platform_machine": "aarch64"}, True),
    "macos arm64": ({"sys_platform": "darwin", "platform_machine": "arm64"}, True),
    "windows amd64": ({"sys_platform": "win32", "platform_machine": "AMD64"}, True),
    "macos x86_64": ({"sys_platform": "darwin", "platform_machine": "x86_64"}, False),
    "linux ppc64le": ({"sys_platform": "linux", "platform_machine": "ppc64le"}, False),
}


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_decord2_is_asked_for_exactly_where_it_has_wheels(platform):
    from packaging.requirements import Requirement

    env, has_wheel = PLATFORMS[platform]
    reqs = [Requirement(r) for r in pyproject()["dependencies"]]
    names = [r.name for r in reqs]
    assert "decord" not in names  # decord 0.6 has no wheel for macOS arm64; never both packages
    decord2 = next(r for r in reqs if r.name == "decord2")
    environment = {"python_version": "3.11", "python_full_version": "3.11.7", **env}
    assert decord2.marker.evaluate(environment) is has_wheel
    assert decord2.marker.evaluate({**environment, "python_version": "3.14"}) is False  # no wheel yet
    av = next(r for r in reqs if r.name == "av")
    assert av.marker is None  # PyAV, the reference backend, everywhere


def test_makefile_never_leaves_both_decord_packages_and_has_a_cpu_torch_path():
    make = (ROOT / "Makefile").read_text()
    assert "pip uninstall --quiet -y decord decord2" in make
    assert "TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu" in make
    readme = (ROOT / "README.md").read_text()
    assert "make lab TORCH=cpu" in readme and "macOS" in readme and "decord2" in readme


def test_the_installed_decord_is_one_package():
    from importlib import metadata

    installed = []
    for dist in ("decord", "decord2"):
        try:
            metadata.distribution(dist)
            installed.append(dist)
        except metadata.PackageNotFoundError:
            pass
    assert len(installed) <= 1, f"both {installed} are installed; they overwrite each other's files"
