"""`python -m counter ...` is the `input-tokens` command (for when the console script is not on PATH)."""

import sys

from counter._cli import main

sys.exit(main())
