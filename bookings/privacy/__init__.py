"""Customers' personal data: forget (``erase``), hand over (``export``), let call content
expire (``retention``). README "Personal data" says what each place keeps."""

from __future__ import annotations

from bookings.privacy.erase import Erasure, NothingToForget, forget_customer, forget_phone
from bookings.privacy.export import NothingToExport, export_phone

__all__ = [
    "Erasure",
    "NothingToExport",
    "NothingToForget",
    "export_phone",
    "forget_customer",
    "forget_phone",
]
