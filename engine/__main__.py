"""``python -m engine COMMAND ...``: the same as the ``ray-durable`` console script."""

import sys

from ._cli import main

sys.exit(main())
