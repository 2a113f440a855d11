"""``ray-durable ui``: a local web UI over a storage (reads storage only; never imports Ray).

:func:`serve` starts it in a background thread (tests, notebooks); the CLI runs it in the
foreground. Pages are rendered by :mod:`._pages`, served by :mod:`._serve`.
"""

from ._serve import UiServer, serve

__all__ = ["UiServer", "serve"]
