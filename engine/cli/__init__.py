"""The ``ray-durable`` command: management commands (``_main``) and their output (``_format``)."""
