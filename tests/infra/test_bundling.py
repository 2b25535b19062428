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
# boto3.client("x"), session.client("x", ...), boto3.resource("x"), self._client("x"), create_client("x")
CLIENT_CALL = re.compile(r"""(?:client|resource)\(\s*["']([a-z0-9-]+)["']""")


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
        "    boto3.client('s3', region_name='eu-west-1')\n"
        "    raise SystemExit('s3 should not be bundled')\n"
        "except UnknownServiceError:\n"
        "    pass\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
    result = subprocess.run([sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
