"""The one lookup made before any tenant is known: an endpoint id to its company.

A SECURITY DEFINER function owned by the table owner returns exactly one endpoint's
company, provider, (encrypted) secret and state. The app role gets nothing else: it
can't list endpoints or read another row, and no general bypass is opened.
"""

from __future__ import annotations

from django.db import migrations

from bookings.migration_operations import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]

    operations = [
        PostgresOnlySQL(
            sql="""
                CREATE FUNCTION askpro_webhook_endpoint(endpoint uuid)
                RETURNS TABLE (company_id bigint, provider varchar, secret text, active boolean)
                LANGUAGE sql STABLE SECURITY DEFINER
                SET search_path = public, pg_temp
                AS $$
                    SELECT e.company_id, e.provider, e.secret, e.active
                    FROM webhooks_webhookendpoint AS e
                    WHERE e.id = endpoint
                $$;
            """,
            reverse_sql="DROP FUNCTION askpro_webhook_endpoint(uuid)",
        ),
    ]
