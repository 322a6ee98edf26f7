"""``python -m tamale.cli``."""

import sys

from tamale.cli import main

sys.exit(main())
