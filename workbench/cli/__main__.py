"""`python -m workbench.cli ...`, as the run workers and tests start the command line."""

from __future__ import annotations

import sys

from workbench.cli import main

sys.exit(main())
