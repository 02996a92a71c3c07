"""Migration 0004 gives existing campaigns and invitations their schedule and wave."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("surveys", "0005_invitation_states_reminders_expiry")]
AFTER = [("surveys", "0006_campaign_schedules")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps():
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_it_makes_sent_campaigns_send_now_campaigns_of_one_wave(old_apps):
    Customer = old_apps.get_model("customers", "Customer")
    Survey = old_apps.get_model("surveys", "Survey")
    Campaign = old_apps.get_model("surveys", "Campaign")
    Invitation = old_apps.get_model("surveys", "Invitation")
    survey = Survey.objects.create(name="NPS", kind="nps")
    campaign = Campaign.objects.create(name="Spring", survey=survey, status="sent")
    customer = Customer.objects.create(email="jane@example.com")
    Invitation.objects.create(campaign=campaign, customer_id=customer.pk, token="t1")

    new_apps = migrate(AFTER)

    Campaign = new_apps.get_model("surveys", "Campaign")
    Invitation = new_apps.get_model("surveys", "Invitation")
    migrated = Campaign.objects.get(pk=campaign.pk)
    assert (migrated.schedule, migrated.status, migrated.wave) == ("now", "sent", 0)
    invitation = Invitation.objects.get()
    assert (invitation.wave, invitation.interaction_id) == (1, None)
    # Still one invitation per customer and wave.
    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(
            campaign_id=campaign.pk, customer_id=customer.pk, token="t2"
        )
    Invitation.objects.create(
        campaign_id=campaign.pk, customer_id=customer.pk, token="t3", wave=2
    )
