"""PostgreSQL enforces tenancy itself: row-level security and tenant-safe foreign keys.

Everything here runs as the app's role (``askpro_app``): no BYPASSRLS, owns no table.
"""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db import connections as all_connections

from tenants.checks import check_row_level_security
from tenants.context import all_tenants, tenant_context
from tenants.db import rls
from tests.conftest import World, token_client

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row-level security is PostgreSQL's"
    ),
    pytest.mark.django_db,
]

TABLES = sorted(model._meta.db_table for model in rls.tenant_models())


def raw(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run raw SQL in a savepoint, so a refusal doesn't spoil the test's transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def test_the_suite_runs_as_a_role_that_rls_binds() -> None:
    ((role, superuser, bypass),) = raw(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    assert role == "askpro_app"
    assert not superuser
    assert not bypass
    owners = raw(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname = ANY(%s)",
        [TABLES],
    )
    assert owners == [("askpro_owner",)]


@pytest.mark.parametrize("table", TABLES)
def test_every_tenant_table_has_forced_rls_and_four_policies(table: str) -> None:
    ((enabled, forced),) = raw(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
        [table],
    )
    assert enabled
    assert forced
    commands = {row[0] for row in raw("SELECT cmd FROM pg_policies WHERE tablename = %s", [table])}
    assert commands == {"SELECT", "INSERT", "UPDATE", "DELETE"}


def test_the_catalogue_check_passes_and_would_notice_a_gap() -> None:
    assert rls.missing_protection(connection) == []
    assert check_row_level_security(databases=["default"]) == []
    from tenants.models import Membership  # not a tenant table: no RLS on it

    with mock.patch.object(rls, "tenant_models", return_value=[Membership]):
        problems = rls.missing_protection(connection)
    assert any("row-level security is not enabled" in p for p in problems)
    assert any("policies" in p for p in problems)


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_without_a_tenant_is_an_error_not_an_empty_result(world: World, table: str) -> None:
    with pytest.raises(DatabaseError, match="invalid input syntax for type bigint"):
        raw(f"SELECT count(*) FROM {table}")  # noqa: S608 - table names from the models


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_inside_a_tenant_sees_only_that_tenant(world: World, table: str) -> None:
    with tenant_context(world.a):
        companies = raw(f"SELECT DISTINCT company_id FROM {table}")  # noqa: S608
    assert companies == [(world.a.pk,)]
    with all_tenants("test: the bypass sees both"):
        companies = raw(f"SELECT DISTINCT company_id FROM {table} ORDER BY 1")  # noqa: S608
    assert companies == sorted([(world.a.pk,), (world.b.pk,)])


@pytest.mark.parametrize("table", TABLES)
def test_moving_a_row_into_another_company_is_refused(world: World, table: str) -> None:
    model = next(m for m in rls.tenant_models() if m._meta.db_table == table)
    mine = world.rows["a"][model]
    with tenant_context(world.a), pytest.raises(DatabaseError, match="row-level security"):
        raw(f"UPDATE {table} SET company_id = %s WHERE id = %s", [world.b.pk, mine.pk])  # noqa: S608


@pytest.mark.parametrize("table", TABLES)
def test_another_companys_rows_cannot_be_touched(world: World, table: str) -> None:
    model = next(m for m in rls.tenant_models() if m._meta.db_table == table)
    theirs = world.rows["b"][model]
    with tenant_context(world.a):
        assert (
            raw(
                f"UPDATE {table} SET company_id = company_id WHERE id = %s RETURNING id",  # noqa: S608
                [theirs.pk],
            )
            == []
        )
        assert raw(f"DELETE FROM {table} WHERE id = %s RETURNING id", [theirs.pk]) == []  # noqa: S608
    with tenant_context(world.b):
        assert raw(f"SELECT id FROM {table} WHERE id = %s", [theirs.pk]) == [(theirs.pk,)]  # noqa: S608


def test_inserting_a_row_for_another_company_is_refused(world: World) -> None:
    with tenant_context(world.a), pytest.raises(DatabaseError, match="row-level security"):
        raw(
            "INSERT INTO bookings_customer (company_id, name, phone, email, notes, created_at)"
            " VALUES (%s, 'smuggled', '', '', '', now())",
            [world.b.pk],
        )


def _appointment_insert(world: World, **overrides: Any) -> None:
    from bookings.models import Appointment, Customer, Service, StaffMember
    from tenants.models import Branch

    values = {
        "company_id": world.a.pk,
        "branch_id": world.rows["a"][Branch].pk,
        "staff_id": world.rows["a"][StaffMember].pk,
        "service_id": world.rows["a"][Service].pk,
        "customer_id": world.rows["a"][Customer].pk,
        **overrides,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # deferred keys check at once
        cursor.execute(
            f"INSERT INTO {Appointment._meta.db_table} (company_id, branch_id, staff_id,"  # noqa: S608
            ' service_id, customer_id, start, "end", busy_until, status, source,'
            " deposit_status, stripe_checkout_session_id, stripe_payment_intent_id, notes,"
            " cancellation_reason, created_at, updated_at) VALUES (%(company_id)s,"
            " %(branch_id)s, %(staff_id)s, %(service_id)s, %(customer_id)s,"
            " now() + interval '400 days', now() + interval '400 days 30 minutes',"
            " now() + interval '400 days 30 minutes', 'confirmed', 'web', 'none', '', '', '',"
            " '', now(), now())",
            values,
        )


def test_a_well_formed_raw_appointment_is_accepted(world: World) -> None:
    with all_tenants("test: raw insert"):
        _appointment_insert(world)


@pytest.mark.parametrize("field", ["customer_id", "staff_id", "service_id", "branch_id"])
def test_an_appointment_pointing_into_another_company_fails_in_the_database(
    world: World, field: str
) -> None:
    """Even with the bypass open and raw SQL, a foreign key can't cross companies."""
    from bookings.models import Customer, Service, StaffMember
    from tenants.models import Branch

    theirs = {
        "customer_id": world.rows["b"][Customer].pk,
        "staff_id": world.rows["b"][StaffMember].pk,
        "service_id": world.rows["b"][Service].pk,
        "branch_id": world.rows["b"][Branch].pk,
    }
    with all_tenants("test: raw insert"), pytest.raises(IntegrityError, match="same_company"):
        _appointment_insert(world, **{field: theirs[field]})


def test_a_through_row_cannot_join_two_companies(world: World) -> None:
    from bookings.models import Service, StaffMember, StaffService

    link = StaffService(
        company=world.a, staff=world.rows["a"][StaffMember], service=world.rows["b"][Service]
    )
    with all_tenants("test"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with pytest.raises(IntegrityError, match="same_company"), transaction.atomic():
            link.save()


def test_the_app_role_cannot_switch_rls_off() -> None:
    with pytest.raises(DatabaseError, match="must be owner"):
        raw("ALTER TABLE bookings_customer DISABLE ROW LEVEL SECURITY")


def test_a_stray_session_setting_does_not_leak_into_scoped_or_unscoped_work(world: World) -> None:
    raw("SET askpro.company_id = %s", [str(world.b.pk)])  # somebody's raw session SET
    try:
        with tenant_context(world.a):
            assert raw("SELECT DISTINCT company_id FROM bookings_customer") == [(world.a.pk,)]
        with pytest.raises(DatabaseError, match="bigint"):
            raw("SELECT count(*) FROM bookings_customer")
    finally:
        raw("RESET askpro.company_id")


@pytest.mark.django_db(transaction=True)
def test_a_reused_connection_never_shows_one_company_to_the_next(world: World) -> None:
    """With persistent connections (CONN_MAX_AGE > 0) requests and tasks for A, then B,
    run on one PostgreSQL session; B never sees A's rows and nothing lingers between."""
    from askpro.celery import app
    from bookings.models import Appointment
    from tenants.tasks import TenantTask

    @app.task(base=TenantTask, name="tests.rls_appointment_companies")
    def appointment_companies(*, company_id: int) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT company_id FROM bookings_appointment")
            return [row[0] for row in cursor.fetchall()]

    connection.settings_dict["CONN_MAX_AGE"] = 600
    try:
        sessions = set()
        for user, company, theirs in (
            (world.owner_a, world.a, world.b),
            (world.outsider, world.b, world.a),
            (world.owner_a, world.a, world.b),
        ):
            listed = token_client(user).get("/api/v1/appointments/").json()["results"]
            assert {row["id"] for row in listed} == {
                world.rows[_key(world, company)][Appointment].pk
            }
            assert world.rows[_key(world, theirs)][Appointment].pk not in {r["id"] for r in listed}
            assert appointment_companies.delay(company_id=company.pk).get() == [company.pk]
            sessions.add(raw("SELECT pg_backend_pid()")[0][0])
            with pytest.raises(DatabaseError, match="bigint"):  # nothing left bound
                raw("SELECT count(*) FROM bookings_appointment")
        assert len(sessions) == 1, "the connection was not reused"
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = 0
        all_connections.close_all()


def _key(world: World, company: Any) -> str:
    return "a" if company.pk == world.a.pk else "b"


@pytest.mark.django_db(transaction=True)
def test_threads_on_their_own_connections_keep_their_own_tenant(world: World) -> None:
    from bookings.models import Customer

    seen: dict[str, set[int]] = {}

    def read(name: str, company: Any) -> None:
        try:
            with tenant_context(company):
                for _ in range(20):
                    seen.setdefault(name, set()).update(
                        row[0] for row in raw("SELECT company_id FROM bookings_customer")
                    )
        finally:
            all_connections.close_all()

    threads = [
        threading.Thread(target=read, args=(n, c)) for n, c in (("a", world.a), ("b", world.b))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": {world.a.pk}, "b": {world.b.pk}}
    assert Customer  # the table under test
