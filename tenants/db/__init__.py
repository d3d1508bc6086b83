"""PostgreSQL side of tenancy: the backend that tells the database which tenant a
statement runs for, and row-level security on every tenant table."""
