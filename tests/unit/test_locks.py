"""The locks: each environment's packages at exact versions with hashes, complete, in step with its input."""

import ast
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "common" / "mail2ticket"
FIRST_PARTY = {"mail2ticket", "infra", "tests", "bench"}

# Lambda's python3.12 arm64 runtime, as the layer's lock is resolved for it.
LAMBDA_ENV = {
    "implementation_name": "cpython",
    "implementation_version": "3.12.0",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.12.0",
    "python_version": "3.12",
    "sys_platform": "linux",
}


@dataclass
class Pin:
    version: Version
    marker: Marker | None
    hashes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Environment:
    name: str
    source: Path
    lock: Path
    marker_env: dict[str, str] | None  # None: the interpreter running the tests

    def applies(self, marker: Marker | None, extra: str = "") -> bool:
        env = {**(self.marker_env or {}), "extra": extra}
        return marker is None or marker.evaluate(env)


LAYER = Environment(
    "layer", PACKAGE.parent / "requirements.in", PACKAGE.parent / "requirements.txt", LAMBDA_ENV
)
DEV = Environment("dev", ROOT / "requirements-dev.in", ROOT / "requirements-dev.txt", None)
SAM = Environment("sam", ROOT / "requirements-sam.in", ROOT / "requirements-sam.txt", None)


def logical_lines(path: Path) -> list[str]:
    """A requirements file's lines with continuations joined and comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def read_input(path: Path) -> list[Requirement]:
    """The human-edited requirements, following `-r` includes as pip does (relative to the including file)."""
    requirements: list[Requirement] = []
    for line in logical_lines(path):
        if line.startswith(("-r ", "--requirement ")):
            requirements += read_input(path.parent / line.split(maxsplit=1)[1])
        elif not line.startswith("-"):
            requirements.append(Requirement(line))
    return requirements


def read_lock(path: Path) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    for line in logical_lines(path):
        spec, *options = line.split(" --")
        requirement = Requirement(spec)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {spec} is not pinned to one version"
        hashes = [option.split("=", 1)[1] for option in options if option.startswith("hash=")]
        pin = Pin(Version(specifier.version), requirement.marker, hashes)
        pins[canonicalize_name(requirement.name)] = pin
    return pins


def installed(site: list[str] | None = None) -> dict[str, metadata.Distribution]:
    found = metadata.distributions(path=site) if site else metadata.distributions()
    return {canonicalize_name(dist.metadata["Name"]): dist for dist in found}


def check(env: Environment, dists: dict[str, metadata.Distribution]) -> list[str]:
    """What is wrong between an environment's input, its lock and the packages' own requirements."""
    pins = read_lock(env.lock)
    problems = [f"{name} has no hash" for name, pin in pins.items() if not pin.hashes]
    expanded: dict[str, set[str]] = {}  # package -> extras whose requirements were followed
    pending = [(req, env.source.name) for req in read_input(env.source)]
    while pending:
        requirement, wanted_by = pending.pop()
        name = canonicalize_name(requirement.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{name} ({requirement}, wanted by {wanted_by}) is missing from the lock")
            continue
        if not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{name}=={pin.version} does not satisfy {requirement} (wanted by {wanted_by})")
        done = expanded.get(name)
        extras = {"", *requirement.extras} - (done or set())
        if not extras:
            continue
        expanded[name] = (done or set()) | extras
        dist = dists.get(name)
        if dist is None:
            problems.append(f"{name}=={pin.version} is locked but not installed: the environment is stale")
            continue
        if done is None and Version(dist.version) != pin.version:
            problems.append(f"{name} is installed at {dist.version}, locked at {pin.version}: stale")
        for line in dist.requires or []:
            sub = Requirement(line)
            if any(env.applies(sub.marker, extra) for extra in extras):
                pending.append((sub, name))
    stale = [name for name, pin in pins.items() if name not in expanded and env.applies(pin.marker)]
    problems += [f"{name} is locked but nothing in {env.source.name} needs it" for name in stale]
    return sorted(set(problems))


def sam_site() -> list[str]:
    sites = sorted((ROOT / ".venv-sam" / "lib").glob("python3*/site-packages"))
    if not sites:
        pytest.skip(".venv-sam is not installed: `make test` installs it before running the tests")
    return [str(site) for site in sites]


@pytest.mark.parametrize("env", [LAYER, DEV], ids=lambda env: env.name)
def test_the_lock_is_complete_and_satisfies_its_input(env: Environment) -> None:
    assert check(env, installed()) == []


def test_the_sam_lock_is_complete_and_satisfies_its_input() -> None:
    assert check(SAM, installed(sam_site())) == []


def test_development_runs_the_layers_versions() -> None:
    layer, dev = read_lock(LAYER.lock), read_lock(DEV.lock)
    differ = {name: pin.version for name, pin in layer.items() if dev.get(name, pin).version != pin.version}
    assert differ == {}


def test_boto3_and_botocore_are_locked_at_one_release() -> None:
    for env in (LAYER, DEV):
        pins = read_lock(env.lock)
        assert pins["boto3"].version == pins["botocore"].version, env.name


def third_party_imports(paths: list[Path]) -> set[str]:
    modules: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - FIRST_PARTY


def direct_packages(env: Environment, paths: list[Path]) -> dict[str, set[str]]:
    """Distributions of the modules the code imports, and whether its environment's input names them."""
    providers = metadata.packages_distributions()
    inputs = {canonicalize_name(req.name) for req in read_input(env.source)}
    missing: dict[str, set[str]] = {}
    for module in third_party_imports(paths):
        dists = {canonicalize_name(dist) for dist in providers.get(module, [module])}
        if not dists & inputs:
            missing[module] = dists
    return missing


def test_every_package_the_lambda_code_imports_is_an_input_of_the_layer() -> None:
    code = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts]
    code += list((ROOT / "functions").rglob("*.py"))
    assert direct_packages(LAYER, code) == {}


def test_every_package_the_tools_import_is_an_input_of_the_development_environment() -> None:
    code = list((PACKAGE / "cli").rglob("*.py"))
    for folder in ("infra", "tests", "bench"):
        code += list((ROOT / folder).rglob("*.py"))
    assert direct_packages(DEV, code) == {}


def test_a_lock_missing_a_required_package_is_caught(tmp_path: Path) -> None:
    # Given the layer's lock without urllib3, which botocore requires
    text = LAYER.lock.read_text()
    start = text.index("\nurllib3==")
    end = text.index("\n", text.index("# via", start))
    broken = tmp_path / "requirements.txt"
    broken.write_text(text[:start] + text[end:])
    source = tmp_path / "requirements.in"
    source.write_text(LAYER.source.read_text())

    # When it is checked, then the gap is named
    problems = check(Environment("layer", source, broken, LAMBDA_ENV), installed())
    assert any(problem.startswith("urllib3 (") and "missing" in problem for problem in problems)


def test_a_lock_out_of_step_with_its_input_is_caught(tmp_path: Path) -> None:
    # Given an input that asks for another nh3 than the lock holds, and no longer asks for tnefparse
    source = tmp_path / "requirements.in"
    source.write_text(
        LAYER.source.read_text().replace("nh3==0.3.8", "nh3>=9").replace("tnefparse==1.4.0\n", "")
    )
    problems = check(Environment("layer", source, LAYER.lock, LAMBDA_ENV), installed())
    assert any(problem.startswith("nh3==0.3.8 does not satisfy nh3>=9") for problem in problems)
    assert "tnefparse is locked but nothing in requirements.in needs it" in problems
