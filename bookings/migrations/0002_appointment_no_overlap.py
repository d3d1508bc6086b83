"""No two active appointments of one staff member overlap — enforced by PostgreSQL.

Added as SQL guarded by vendor rather than ``Meta.constraints``: an
``ExclusionConstraint`` there breaks SQLite migrations and makes ``full_clean()`` run
PostgreSQL operators (PITFALLS.md, Bookings). On SQLite the booking service's check is
the guard. The range covers the service's buffer (``busy_until``).
"""

from __future__ import annotations

from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations

from bookings.migration_operations import PostgresOnlySQL

CONSTRAINT = "appointment_no_overlap"


class Migration(migrations.Migration):
    dependencies = [("bookings", "0001_initial")]

    operations = [
        BtreeGistExtension(),
        PostgresOnlySQL(
            sql=f"""
                ALTER TABLE bookings_appointment ADD CONSTRAINT {CONSTRAINT}
                EXCLUDE USING gist (
                    staff_id WITH =,
                    tstzrange(start, busy_until, '[)') WITH &&
                ) WHERE (status IN ('pending', 'confirmed'))
            """,
            reverse_sql=f"ALTER TABLE bookings_appointment DROP CONSTRAINT {CONSTRAINT}",
        ),
    ]
