"""``python -m jobs.cli`` (and ``flink run -pym jobs.cli``) runs the command line."""

import sys

from jobs.cli import main

sys.exit(main())
