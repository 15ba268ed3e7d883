"""``python -m neuralsde``: see :mod:`neuralsde.cli`."""

import sys

from .cli import main

sys.exit(main())
