from django.db import migrations

# The admin's search (email, name, external id: Django's icontains, which is
# UPPER(col::text) LIKE UPPER('%term%')) and its property filters (properties @>
# '{"plan": "pro"}') over a million customers: trigram and JSON containment
# indexes. PostgreSQL only: SQLite, the embedded default, reads its small tables
# whole anyway; so they are plain SQL here, not in the models' Meta.indexes.
INDEXES = [
    (
        "customer_email_trgm",
        "USING gin (upper(email::text) gin_trgm_ops)",
    ),
    ("customer_name_trgm", "USING gin (upper(name::text) gin_trgm_ops)"),
    (
        "customer_external_id_trgm",
        "USING gin (upper(external_id::text) gin_trgm_ops)",
    ),
    ("customer_properties", "USING gin (properties jsonb_path_ops)"),
]


def indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, how in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON customers_customer {how}"
        )


def indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _how in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_timeline")]

    operations = [migrations.RunPython(indexes_create, indexes_drop)]
