"""The functions' asset, bundled without Docker: functions/ plus the runtime wheels for Lambda's platform.

The wheels are installed once per requirement set into a cache directory
(``$RDSGATE_WHEEL_CACHE`` or ``~/.cache/rdsgate/lambda-deps``) and hard-linked
into each bundle, so repeated synths (tests, `cdk diff`) cost no pip run. The
asset hash covers the sources, the requirements and the installed versions,
so a changed handler or dependency yields a new asset, and an unchanged one
lets CDK skip bundling altogether. Delete the cache to pick up newer releases.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

# One place for the Lambda runtime: the wheels are installed for exactly this interpreter and platform.
PYTHON_VERSION = "3.13"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
WHEEL_PLATFORM = "manylinux2014_aarch64"

_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
# botocore carries a model for every AWS service (~20 of its ~21 MB); the asset keeps those the
# functions call (tests/infra/test_bundling.py checks the code for others), so it stays < 30 MB.
BOTOCORE_SERVICES = ("dynamodb", "iam", "rds", "secretsmanager", "sts")


def runtime_requirements(pyproject: Path) -> tuple[str, ...]:
    """The Lambda runtime dependencies, read from pyproject.toml's [project] dependencies."""
    with pyproject.open("rb") as handle:
        return tuple(tomllib.load(handle)["project"]["dependencies"])


def wheel_cache_root() -> Path:
    configured = os.environ.get("RDSGATE_WHEEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "rdsgate" / "lambda-deps"


def installed_dependencies(requirements: tuple[str, ...], cache_root: Path | None = None) -> Path:
    """Return the directory holding the installed wheels, running pip only when it does not exist yet."""
    key = hashlib.sha256("\n".join((PYTHON_VERSION, WHEEL_PLATFORM, *requirements)).encode()).hexdigest()[:16]
    target = (cache_root or wheel_cache_root()) / f"py{PYTHON_VERSION}-{WHEEL_PLATFORM}-{key}"
    if target.is_dir():
        return target
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(staging), "--platform", WHEEL_PLATFORM, "--implementation", "cp",
        "--python-version", PYTHON_VERSION, "--only-binary=:all:", *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"installing the Lambda dependencies failed ({' '.join(command)}):\n{result.stderr}")
    shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts are of no use in Lambda
    try:
        staging.rename(target)  # atomic: a concurrent synth that won the race keeps its copy
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _tree_digest(root: Path, digest: hashlib._Hash) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


@jsii.implements(cdk.ILocalBundling)
class LocalBundling:
    """Copies the sources and hard-links the cached wheels into the asset directory; never uses Docker."""

    def __init__(self, source: Path, dependencies: Path) -> None:
        self.source = source
        self.dependencies = dependencies

    def try_bundle(self, output_dir: str, *_options: object, **_kw: object) -> bool:
        _link_tree(self.dependencies, Path(output_dir))
        shutil.copytree(self.source, output_dir, ignore=_SKIPPED, dirs_exist_ok=True)
        return True


def _link_tree(source: Path, destination: Path) -> None:
    try:
        shutil.copytree(source, destination, copy_function=os.link, dirs_exist_ok=True, ignore=_unused_models)
    except OSError:  # another filesystem: copy instead
        shutil.copytree(source, destination, dirs_exist_ok=True, ignore=_unused_models)


def _unused_models(directory: str, names: list[str]) -> set[str]:
    """In botocore/data, the folder of every service the functions do not call."""
    if Path(directory).parts[-2:] != ("botocore", "data"):
        return set()
    return {name for name in names if name not in BOTOCORE_SERVICES and (Path(directory) / name).is_dir()}


def function_code(source: Path, pyproject: Path) -> lambda_.Code:
    """The one asset every rdsgate function runs from."""
    requirements = runtime_requirements(pyproject)
    dependencies = installed_dependencies(requirements)
    digest = hashlib.sha256("\n".join((PYTHON_VERSION, WHEEL_PLATFORM, *requirements)).encode())
    digest.update("\n".join(sorted(p.name for p in dependencies.glob("*.dist-info"))).encode())
    digest.update(",".join(BOTOCORE_SERVICES).encode())
    _tree_digest(source, digest)
    return lambda_.Code.from_asset(
        str(source),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=digest.hexdigest(),
        bundling=cdk.BundlingOptions(
            # Required by the API but never pulled: local bundling always succeeds or raises.
            image=cdk.DockerImage.from_registry(f"public.ecr.aws/sam/build-python{PYTHON_VERSION}"),
            local=LocalBundling(source, dependencies),
        ),
    )
