"""Cal.com as a second source of busy time, and the periodic repair of calendar drift.

- ``busy``: a staff member's Cal.com busy times per branch-local day, cached briefly in
  Redis (a longer-lived stale copy serves while Cal.com is down); ``CalendarBusy`` plugs
  into ``bookings.availability.find_slots(extra_busy=...)``.
- ``signals``: an appointment change invalidates that staff member's cached busy times.
- ``reconcile``: compares the next 14 days of Cal.com bookings with our appointments and
  repairs drift through the Cal.com webhook handlers (``tasks``: Celery beat, fan-out).
"""

from __future__ import annotations
