"""``python -m tfseti.train``: see :mod:`tfseti.train.cli`."""

import sys

from tfseti.train.cli import main

sys.exit(main())
