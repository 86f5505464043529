"""``python -m imagent.cli``: the same as the ``imagent`` command."""

import sys

from imagent.cli import main

sys.exit(main())
