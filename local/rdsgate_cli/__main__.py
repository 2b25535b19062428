"""``python -m rdsgate_cli``: the `rdsgate` command, as the console script runs it."""

import sys

from rdsgate_cli.cli import main

sys.exit(main())
