"""The layer as `sam build` makes it: Lambda's arm64 wheels, and bytecode Lambda uses without recompiling."""

import subprocess
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ELF_MACHINE_AARCH64 = 0xB7


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifacts = tmp_path_factory.mktemp("layer")
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT / "layers" / "common"),
            "build-CommonLayer",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
        capture_output=True,
    )
    return artifacts / "python"


def test_every_module_ships_bytecode_that_is_never_checked_against_its_source(layer: Path) -> None:
    # Given the built layer, with the package beside its dependencies
    sources = sorted(layer.rglob("*.py"))
    assert layer / "mail2ticket" / "process.py" in sources

    # Then each module has bytecode for this interpreter, hash-based and unchecked (flags 1): Lambda's
    # read-only /opt could not cache a compilation, and a source's time stamp in the zip does not matter
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        header = compiled.read_bytes()[:8]
        assert header[:4] == MAGIC_NUMBER, compiled
        assert int.from_bytes(header[4:8], "little") == 1, compiled


def test_native_libraries_are_built_for_lambdas_arm64(layer: Path) -> None:
    libraries = sorted(layer.rglob("*.so"))
    assert any(lib.parent.name == "PIL" for lib in libraries)
    assert any(lib.parent.name == "pydantic_core" for lib in libraries)
    for library in libraries:
        header = library.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, (
            library
        )


def test_no_scripts_nor_build_files_are_shipped(layer: Path) -> None:
    assert sorted(p.name for p in layer.parent.iterdir()) == ["python"]
    assert not (layer / "bin").exists()
    assert not (layer / "requirements.txt").exists()


def test_boto3_ships_with_the_botocore_of_its_release(layer: Path) -> None:
    # The layer comes first on Lambda's path: the runtime's own boto3 would otherwise run over its botocore.
    versions = {
        info.name.split("-")[0]: info.name.removesuffix(".dist-info").split("-")[1]
        for info in layer.glob("*.dist-info")
    }
    assert versions["boto3"] == versions["botocore"]
