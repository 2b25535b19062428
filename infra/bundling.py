"""The functions' asset, bundled without Docker: functions/ plus the runtime wheels for Lambda's platform.

The wheels are installed once per requirement set into a cache directory
(``$RDSGATE_WHEEL_CACHE`` or ``~/.cache/rdsgate/lambda-deps``) and hard-linked
into each bundle, so repeated synths (tests, `cdk diff`) cost no pip run. The
asset hash covers the sources, the requirements and the installed versions,
so a changed handler or dependency yields a new asset, and an unchanged one
lets CDK skip bundling altogether. Delete the cache to pick up newer releases.

Bytecode: Lambda's ``/var/task`` is read-only, so a module without a usable
``__pycache__`` entry is compiled from source at every cold start (several
hundred milliseconds for what a first request imports). When a CPython of the
runtime's version is on the build machine (:func:`runtime_python`), the asset
ships ``cpython-313`` bytecode compiled with ``--invalidation-mode unchecked-hash``
(never checked against the sources, which cannot change there) and file names
under ``/var/task``; the wheels are compiled once, in the cache. Without one, the
asset has sources only and the stack carries a warning saying so.
"""

from __future__ import annotations

import functools
import glob
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
from constructs import IConstruct

# One place for the Lambda runtime: the wheels are installed for exactly this interpreter and platform.
PYTHON_VERSION = "3.13"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
WHEEL_PLATFORM = "manylinux2014_aarch64"

_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
# Where the code lives in Lambda: the file names compiled into the bytecode (tracebacks show them).
TASK_ROOT = "/var/task"
# Names the interpreter to compile with, instead of looking for one.
BYTECODE_PYTHON_ENV = "RDSGATE_BYTECODE_PYTHON"
_COMPILED_MARK = ".rdsgate-bytecode"  # in a wheel cache directory: its wheels carry bytecode
# botocore carries a model for every AWS service (~20 of its ~21 MB); the asset keeps those the
# functions call (tests/infra/test_bundling.py checks the code for others), so it stays < 30 MB.
BOTOCORE_SERVICES = ("dynamodb", "iam", "kms", "lambda", "rds", "s3", "secretsmanager", "sns", "stepfunctions", "sts")


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


@functools.lru_cache(maxsize=None)
def runtime_python() -> str | None:
    """A CPython of the runtime's version (PYTHON_VERSION) on this machine, or None.

    ``$RDSGATE_BYTECODE_PYTHON`` if set (and then it must be one), else the first that runs of
    ``python3.13`` on PATH, Debian's or a local build's, and pyenv's versions.
    """
    configured = os.environ.get(BYTECODE_PYTHON_ENV)
    if configured:
        if not _is_runtime_python(configured):
            raise RuntimeError(f"{BYTECODE_PYTHON_ENV}={configured} is not a CPython {PYTHON_VERSION}")
        return configured
    name = f"python{PYTHON_VERSION}"
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [shutil.which(name), f"/usr/bin/{name}", f"/usr/local/bin/{name}"]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{PYTHON_VERSION}*/bin/{name}"), reverse=True)
    for candidate in dict.fromkeys(c for c in candidates if c):
        if _is_runtime_python(candidate):
            return candidate
    return None


def _is_runtime_python(executable: str) -> bool:
    """True if `executable` runs and is CPython PYTHON_VERSION (a pyenv shim of another version fails)."""
    probe = "import sys; print(sys.implementation.name, '%d.%d' % sys.version_info[:2])"
    try:
        result = subprocess.run([executable, "-I", "-c", probe], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.split() == ["cpython", PYTHON_VERSION]


def runtime_python_version(python: str) -> str:
    """The full version of `python`, which the asset hash covers (its bytecode is in the asset)."""
    result = subprocess.run([python, "-I", "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def compile_bytecode(python: str, tree: Path, paths: list[Path] | None = None) -> None:
    """Compile the .py files of `paths` (default: all of `tree`) for the runtime, as found under /var/task."""
    command = [
        python, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
        "-s", str(tree), "-p", TASK_ROOT, *(str(p) for p in (paths or [tree])),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"compiling the asset's bytecode failed ({' '.join(command)}):\n{result.stdout}{result.stderr}")


def compiled_dependencies(dependencies: Path, python: str) -> Path:
    """Compile the cached wheels once (marked by a file naming the interpreter's version)."""
    mark = dependencies / _COMPILED_MARK
    version = runtime_python_version(python)
    if not mark.is_file() or mark.read_text() != version:
        compile_bytecode(python, dependencies)
        mark.write_text(version)
    return dependencies


def _tree_digest(root: Path, digest: hashlib._Hash) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


@jsii.implements(cdk.ILocalBundling)
class LocalBundling:
    """Copies the sources and hard-links the cached wheels into the asset directory; never uses Docker."""

    def __init__(self, source: Path, dependencies: Path, python: str | None = None) -> None:
        self.source = source
        self.dependencies = dependencies
        self.python = python  # a CPython of the runtime's version: ship bytecode; None: sources only

    def try_bundle(self, output_dir: str, *_options: object, **_kw: object) -> bool:
        output = Path(output_dir)
        if self.python is not None:
            compiled_dependencies(self.dependencies, self.python)
        _link_tree(self.dependencies, output, bytecode=self.python is not None)
        shutil.copytree(self.source, output_dir, ignore=_SKIPPED, dirs_exist_ok=True)
        if self.python is not None:
            compile_bytecode(self.python, output, [output / p.name for p in sorted(self.source.iterdir())])
        return True


def _link_tree(source: Path, destination: Path, *, bytecode: bool = False) -> None:
    ignore = _unused_models if bytecode else _unused_models_and_bytecode
    try:
        shutil.copytree(source, destination, copy_function=os.link, dirs_exist_ok=True, ignore=ignore)
    except OSError:  # another filesystem: copy instead
        shutil.copytree(source, destination, dirs_exist_ok=True, ignore=ignore)


def _unused_models(directory: str, names: list[str]) -> set[str]:
    """The cache's mark, and in botocore/data the folder of every service the functions do not call."""
    ignored = {_COMPILED_MARK} & set(names)
    if Path(directory).parts[-2:] != ("botocore", "data"):
        return ignored
    return ignored | {name for name in names if name not in BOTOCORE_SERVICES and (Path(directory) / name).is_dir()}


def _unused_models_and_bytecode(directory: str, names: list[str]) -> set[str]:
    """As _unused_models, and the cache's bytecode: a sources-only asset has none."""
    return _unused_models(directory, names) | {name for name in names if name == "__pycache__" or name.endswith(".pyc")}


BYTECODE_MISSING = (
    f"No CPython {PYTHON_VERSION} was found on this machine, so the functions' asset carries no bytecode: "
    f"every cold start compiles what it imports. Install python{PYTHON_VERSION} (or set {BYTECODE_PYTHON_ENV}) "
    "and synthesize again."
)


def function_code(source: Path, pyproject: Path, scope: IConstruct | None = None) -> lambda_.Code:
    """The one asset every rdsgate function runs from, with bytecode when a runtime Python is here.

    Without one, `scope` (the stack) gets a warning that the asset carries sources only.
    """
    requirements = runtime_requirements(pyproject)
    dependencies = installed_dependencies(requirements)
    python = runtime_python()
    if python is None and scope is not None:
        cdk.Annotations.of(scope).add_warning_v2("rdsgate:asset-without-bytecode", BYTECODE_MISSING)
    digest = hashlib.sha256("\n".join((PYTHON_VERSION, WHEEL_PLATFORM, *requirements)).encode())
    digest.update(f"bytecode: {runtime_python_version(python) if python else 'none'}".encode())
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
            local=LocalBundling(source, dependencies, python),
        ),
    )
