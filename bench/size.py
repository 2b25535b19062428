"""The deployment asset's size: built by infra/bundling.py exactly as ``cdk synth`` builds it, then measured.

Run on its own with ``python3 -m bench.size`` (prints JSON). Building needs the Lambda
wheels in the cache (``~/.cache/rdsgate/lambda-deps``); pip fills it on first use.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import zipfile

REPO = pathlib.Path(__file__).resolve().parent.parent
# What the Lambda Python runtime already ships (boto3 and what it pulls in).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py")


def _top_level(path: pathlib.Path, root: pathlib.Path) -> str:
    first = path.relative_to(root).parts[0]
    if first.endswith(".dist-info"):
        return first.split("-", 1)[0].lower().replace("python_dateutil", "dateutil") + " (metadata)"
    return first


def measure(asset: pathlib.Path) -> dict:
    files = [p for p in asset.rglob("*") if p.is_file()]
    by_package: dict[str, int] = {}
    for path in files:
        key = _top_level(path, asset)
        by_package[key] = by_package.get(key, 0) + path.stat().st_size
    unzipped = sum(by_package.values())
    runtime_provided = sum(
        size for key, size in by_package.items() if key.split(" ")[0] in RUNTIME_PROVIDED
    )
    with tempfile.TemporaryDirectory(prefix="rdsgate-asset-zip-") as folder:
        archive = pathlib.Path(folder) / "asset.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zipped:
            for path in sorted(files):
                zipped.write(path, path.relative_to(asset).as_posix())
        zipped_size = archive.stat().st_size
    return {
        "files": len(files),
        "unzipped": unzipped,
        "zipped": zipped_size,
        "runtime_provided": runtime_provided,
        "by_package": dict(sorted(by_package.items(), key=lambda item: -item[1])),
    }


def build(folder: str, bytecode: bool = True) -> dict:
    """Bundle the functions' asset into `folder` as `cdk synth` does: with the runtime's bytecode when a
    CPython of its version is on this machine (and `bytecode`). Returns that interpreter (None: none here)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from infra import bundling

    requirements = bundling.runtime_requirements(REPO / "pyproject.toml")
    dependencies = bundling.installed_dependencies(requirements)
    python = bundling.runtime_python()
    bundling.LocalBundling(REPO / "functions", dependencies, python if bytecode else None).try_bundle(folder)
    return {
        "python": python,
        "python_version": bundling.runtime_python_version(python) if python else None,
        "platform": f"CPython {bundling.PYTHON_VERSION}, {bundling.WHEEL_PLATFORM}",
        "requirements": list(requirements),
    }


def build_and_measure() -> dict:
    """Bundle the functions' asset with infra/bundling.py into a temporary folder and measure it."""
    with tempfile.TemporaryDirectory(prefix="rdsgate-asset-") as folder:
        built = build(folder)
        result = measure(pathlib.Path(folder))
    result["bytecode"] = built["python_version"]
    result["platform"] = built["platform"]
    result["requirements"] = built["requirements"]
    return result


if __name__ == "__main__":
    # python3 -m bench.size             build into a temporary folder, measure, print JSON
    # python3 -m bench.size --build DIR [--sources-only]
    #                                   build into DIR (the cold-start benchmark runs it), print JSON
    if sys.argv[1:2] == ["--build"]:
        json.dump(build(sys.argv[2], bytecode="--sources-only" not in sys.argv[3:]), sys.stdout)
    else:
        json.dump(build_and_measure(), sys.stdout, indent=2)
    print()
