"""The triggers that keep the daily rollups, in a migration of their own: the
rollups' unique indexes (created at the end of the migration that makes the
tables) must exist for the triggers' upserts."""

from django.db import migrations


def rollups_install(apps, schema_editor):
    """The triggers that keep the rollups, and the rollups counted from the rows
    already there (PostgreSQL; SQLite reads the rows)."""
    from surveys.rollups import rollup_rebuild

    rollup_rebuild(using=schema_editor.connection.alias)


def rollups_uninstall(apps, schema_editor):
    from surveys.rollups import UNINSTALL_SQL

    if schema_editor.connection.vendor == "postgresql":
        for statement in UNINSTALL_SQL:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("surveys", "0012_daily_rollups")]

    operations = [migrations.RunPython(rollups_install, rollups_uninstall)]
