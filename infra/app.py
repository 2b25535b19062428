"""CDK entry point: settings from context, then the rdsgate stack.

`cdk.json` runs `PYTHONPATH=functions python3 -m infra.app` from the repository's root: the app reuses rdsgate's
own parser and rules (`functions/rdsgate`), which an editable install (`pip install -e .`) also provides.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from infra.settings import Settings
from infra.stack import RdsgateStack


def build(context: dict[str, Any] | None = None, outdir: str | None = None) -> tuple[cdk.App, RdsgateStack]:
    """Build the app from `context` (plus cdk.json's, when run by the CLI); tests call this too."""
    app = cdk.App(context=context, outdir=outdir)
    settings = Settings.from_context(app.node.try_get_context)
    for key, value in settings.az_lookup_context.items():
        app.node.set_context(key, value)  # answer the AZ lookup ourselves: no credentials needed
    return app, RdsgateStack(app, settings.stack_name, settings=settings, env=settings.environment)


if __name__ == "__main__":
    build()[0].synth()
