"""`python -m tritonab` is the `tritonab` command."""

import sys

from tritonab.cli import main

sys.exit(main())
