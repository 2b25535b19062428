"""CDK entry point (`cdk.json` runs `python3 -m infra.app`): settings from context, then the rdsgate stack."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))  # the app reuses rdsgate's parser

import aws_cdk as cdk  # noqa: E402

from infra.settings import Settings  # noqa: E402
from infra.stack import RdsgateStack  # noqa: E402


def build(context: dict[str, Any] | None = None, outdir: str | None = None) -> tuple[cdk.App, RdsgateStack]:
    """Build the app from `context` (plus cdk.json's, when run by the CLI); tests call this too."""
    app = cdk.App(context=context, outdir=outdir)
    settings = Settings.from_context(app.node.try_get_context)
    for key, value in settings.az_lookup_context.items():
        app.node.set_context(key, value)  # answer the AZ lookup ourselves: no credentials needed
    return app, RdsgateStack(app, settings.stack_name, settings=settings, env=settings.environment)


if __name__ == "__main__":
    build()[0].synth()
