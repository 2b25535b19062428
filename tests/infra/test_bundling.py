"""The asset keeps botocore's models for the services the functions call, and only those."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra import bundling  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# boto3.client("x"), session.client("x", ...), boto3.resource("x"), self._client("x"), create_client("x"),
# and the shared client caches: clients.get("x"), CLIENTS.get("x")
CLIENT_CALL = re.compile(r"""(?:(?:client|resource)|(?:clients|CLIENTS)\.get)\(\s*["']([a-z0-9-]+)["']""")


def test_the_functions_call_only_services_whose_models_are_bundled():
    called = set()
    for path in (ROOT / "functions").rglob("*.py"):
        called.update(CLIENT_CALL.findall(path.read_text()))
    assert called, "the scan found no client at all: the pattern is stale"
    assert called <= set(bundling.BOTOCORE_SERVICES), f"add to infra/bundling.py BOTOCORE_SERVICES: {sorted(called - set(bundling.BOTOCORE_SERVICES))}"


@pytest.fixture(scope="module")
def asset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("asset")
    dependencies = bundling.installed_dependencies(bundling.runtime_requirements(ROOT / "pyproject.toml"))
    bundling.LocalBundling(ROOT / "functions", dependencies).try_bundle(str(folder))
    return folder


def test_the_asset_is_under_30_mb_and_serves_every_listed_service(asset):
    size = sum(p.stat().st_size for p in asset.rglob("*") if p.is_file())
    assert size < 30_000_000
    models = {p.name for p in (asset / "botocore" / "data").iterdir() if p.is_dir()}
    assert models == set(bundling.BOTOCORE_SERVICES)
    script = (
        "import sys\n"
        f"sys.path[:0] = [{str(asset)!r}]\n"
        "import boto3, botocore.session\n"
        "from botocore.exceptions import UnknownServiceError\n"
        "assert boto3.__file__.startswith(sys.path[0])\n"
        f"for service in {bundling.BOTOCORE_SERVICES!r}:\n"
        "    botocore.session.get_session().create_client(service, region_name='eu-west-1')\n"
        "boto3.resource('dynamodb', region_name='eu-west-1').Table('t')\n"
        "try:\n"
        "    boto3.client('ec2', region_name='eu-west-1')\n"
        "    raise SystemExit('ec2 should not be bundled')\n"
        "except UnknownServiceError:\n"
        "    pass\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
    result = subprocess.run([sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# --- bytecode for the runtime's Python ---------------------------------------------------------

RUNTIME_PYTHON = bundling.runtime_python()
needs_runtime_python = pytest.mark.skipif(RUNTIME_PYTHON is None, reason=f"no CPython {bundling.PYTHON_VERSION} here")


def test_without_a_runtime_python_the_asset_has_no_bytecode_even_from_a_compiled_cache(tmp_path):
    dependencies = bundling.installed_dependencies(bundling.runtime_requirements(ROOT / "pyproject.toml"))
    if RUNTIME_PYTHON is not None:
        bundling.compiled_dependencies(dependencies, RUNTIME_PYTHON)  # the cache holds bytecode now
    asset = tmp_path / "asset"
    bundling.LocalBundling(ROOT / "functions", dependencies, None).try_bundle(str(asset))
    assert (asset / "rdsgate" / "api.py").is_file()
    assert not [p for p in asset.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    assert not (asset / ".rdsgate-bytecode").exists()


def test_only_a_working_cpython_of_the_runtimes_version_is_taken(tmp_path, monkeypatch):
    shim = tmp_path / "bin" / f"python{bundling.PYTHON_VERSION}"
    shim.parent.mkdir()
    shim.write_text("#!/bin/sh\necho 'pyenv: command not found' >&2\nexit 127\n")  # what a pyenv shim does
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(shim.parent))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.delenv(bundling.BYTECODE_PYTHON_ENV, raising=False)
    bundling.runtime_python.cache_clear()
    try:
        found = bundling.runtime_python()
        assert found is None or found.startswith(("/usr/bin/", "/usr/local/bin/"))  # never the broken shim
        monkeypatch.setenv(bundling.BYTECODE_PYTHON_ENV, sys.executable)  # this test's Python is not 3.13
        bundling.runtime_python.cache_clear()
        if sys.version_info[:2] != (3, 13):
            with pytest.raises(RuntimeError, match=bundling.BYTECODE_PYTHON_ENV):
                bundling.runtime_python()
    finally:
        bundling.runtime_python.cache_clear()


def test_without_a_runtime_python_the_stack_warns(monkeypatch):
    import aws_cdk as cdk
    from aws_cdk.assertions import Annotations, Match

    monkeypatch.setattr(bundling, "runtime_python", lambda: None)
    stack = cdk.Stack(cdk.App(), "Warned")
    bundling.function_code(ROOT / "functions", ROOT / "pyproject.toml", scope=stack)
    Annotations.from_stack(stack).has_warning("/Warned", Match.string_like_regexp("carries no bytecode"))


@needs_runtime_python
def test_the_runtime_loads_the_shipped_bytecode_from_a_read_only_copy_without_reading_sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compiled")
    dependencies = bundling.installed_dependencies(bundling.runtime_requirements(ROOT / "pyproject.toml"))
    bundling.LocalBundling(ROOT / "functions", dependencies, RUNTIME_PYTHON).try_bundle(str(folder))
    sources = [p for p in folder.rglob("*.py")]
    compiled = list(folder.rglob("*.pyc"))
    assert sources and len(compiled) == len(sources)
    for pyc in compiled:
        assert pyc.name.endswith(".cpython-313.pyc"), pyc
    header = (folder / "rdsgate" / "__pycache__" / "errors.cpython-313.pyc").read_bytes()[:16]
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, never checked against the source
    # Spoil a source: the runtime must not notice, since it never reads it. Then make the copy read-only.
    (folder / "rdsgate" / "errors.py").write_text("raise SystemExit('the source was compiled')\n")
    before = sorted(str(p) for p in folder.rglob("*"))
    for path in folder.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    script = (
        "import sys, rdsgate.errors, botocore.session, pg8000.native\n"
        "assert rdsgate.errors.__file__.startswith(sys.path[0])\n"
        "import marshal\n"
        "print(marshal.loads(open(rdsgate.errors.__cached__, 'rb').read()[16:]).co_filename)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([RUNTIME_PYTHON, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("/var/task/rdsgate/")  # compiled as found in Lambda
    assert sorted(str(p) for p in folder.rglob("*")) == before
