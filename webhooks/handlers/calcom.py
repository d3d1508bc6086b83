"""calcom webhook handlers."""

from __future__ import annotations
