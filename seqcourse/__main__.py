"""``python -m seqcourse``: the same as the ``seqcourse`` command."""

import sys

from .cli import main

sys.exit(main())
