"""``python -m replay COMMAND ...``: the replay tool, same as ``ray-durable replay COMMAND ...``."""

import sys

from ._cli import replay_main

sys.exit(replay_main())
