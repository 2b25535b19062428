"""rdsgate.lazy: modules on first use, and package __init__s deferred without anything going missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, script: str) -> str:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        import sys
        sys.modules["__main__"].RAN.append("init")  # the side effect deferring avoids
        from .fast import Fast
        from .fast import helper as assistant
        from .heavy import (
            Heavy,  # a comment
            Other,
        )
        CONSTANT = "set by the init"
    '''))
    (package / "extra.py").write_text("VALUE = 'extra'\n")
    (package / "fast.py").write_text("class Fast: pass\ndef helper(): return 'helped'\n")
    (package / "heavy.py").write_text("import sys\nsys.modules['__main__'].RAN.append('heavy')\nclass Heavy: pass\nclass Other: pass\n")
    code = "RAN = []\nimport sys\nsys.path[:0] = [%r, %r]\nfrom rdsgate.lazy import defer_package_init\n" % (str(tmp_path), str(ROOT / "functions"))
    result = subprocess.run([sys.executable, "-c", code + textwrap.dedent(script)], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_a_reexported_name_comes_from_its_module_without_the_init(tmp_path):
    out = run(tmp_path, '''
        defer_package_init("pkg")
        from pkg import extra  # a submodule the init does not name
        from pkg import Fast, assistant
        import pkg.fast, pkg
        print(RAN, extra.VALUE, Fast.__module__, assistant(), pkg.fast.Fast is Fast)
    ''')
    assert out == "[] extra pkg.fast helped True"


def test_any_other_name_runs_the_real_init_once(tmp_path):
    out = run(tmp_path, '''
        defer_package_init("pkg")
        from pkg import Fast
        import pkg
        print(pkg.CONSTANT, RAN, pkg.Heavy.__module__, RAN)
        try:
            pkg.missing
        except AttributeError as exc:
            print("AttributeError", exc)
    ''')
    assert out.splitlines() == ["set by the init ['init', 'heavy'] pkg.heavy ['init', 'heavy']",
                                "AttributeError module 'pkg' has no attribute 'missing'"]  # fmt: skip


def test_an_imported_package_is_left_alone(tmp_path):
    out = run(tmp_path, '''
        import pkg
        defer_package_init("pkg")
        print(RAN, pkg.CONSTANT)
    ''')
    assert out == "['init', 'heavy'] set by the init"


def test_the_api_loads_no_other_resolver_and_no_event_class_it_does_not_use():
    script = (
        "import sys\nfrom rdsgate import api\n"
        "print(sorted(m for m in sys.modules if m.startswith(('aws_lambda_powertools.event_handler.appsync', "
        "'aws_lambda_powertools.event_handler.bedrock', 'aws_lambda_powertools.utilities.data_classes.code_pipeline', "
        "'asyncio', 'zipfile'))))\n"
        "print(api.app.__class__.__name__, api.Response.__module__)\n"
    )
    env = {"PYTHONPATH": str(ROOT / "functions"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env).stdout
    assert out.splitlines() == ["[]", "APIGatewayRestResolver aws_lambda_powertools.event_handler.api_gateway"]
