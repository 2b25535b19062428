"""``python3 -m bench``: run the benchmark suite and write bench/RESULTS.md."""

import sys

from .run import main

sys.exit(main())
