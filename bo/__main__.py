"""`python -m bo` is the `bo` command."""

import sys

from bo.cli import main

sys.exit(main())
