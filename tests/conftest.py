"""Shared fixtures. Ray is started only by tests/engine (see its conftest)."""

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
