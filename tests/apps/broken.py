"""A module that fails while importing, as a user's app with a bug would."""

from __future__ import annotations

raise RuntimeError("database URL is not set")
