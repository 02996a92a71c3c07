import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def turns_for_agents(apps, schema_editor):
    """Each agent's turn, last assigned when they last got a follow-up."""
    AgentTurn = apps.get_model("followups", "AgentTurn")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    agents = User.objects.filter(groups__name="CX agents").annotate(
        last=models.Max("followups__assigned_at")
    )
    AgentTurn.objects.bulk_create(
        [AgentTurn(user_id=a.pk, last_assigned_at=a.last) for a in agents],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('followups', '0002_groups'),
    ]

    operations = [
        migrations.CreateModel(
            name='AgentTurn',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='agent_turn', serialize=False, to=settings.AUTH_USER_MODEL, verbose_name='agent')),
                ('last_assigned_at', models.DateTimeField(blank=True, null=True, verbose_name='last assigned at')),
            ],
            options={
                'verbose_name': 'agent turn',
                'verbose_name_plural': 'agent turns',
            },
        ),
        migrations.RunPython(turns_for_agents, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='followupevent',
            name='kind',
            field=models.CharField(choices=[('opened', 'Opened'), ('assigned', 'Assigned'), ('priority', 'Priority changed'), ('owner_notified', 'Owner notified'), ('note', 'Note'), ('answer_changed', 'Customer changed the answer'), ('commented', 'Customer added to the answer'), ('overdue', 'Overdue'), ('escalated', 'Escalated'), ('resolved', 'Resolved')], max_length=20, verbose_name='kind'),
        ),
    ]
