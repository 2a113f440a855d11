"""``python -m engine COMMAND ...``: the same as the ``ray-durable`` console script."""

import sys

from .cli._main import main

sys.exit(main())
