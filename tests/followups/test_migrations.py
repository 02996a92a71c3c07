"""The loop's migrations keep existing follow-ups: statuses, customers, root causes."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from surveys.models import Response
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("followups", "0003_agent_turns")]
AFTER = [("followups", "0006_loop_finish")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_it_moves_old_followups_to_the_new_workflow():
    old = migrate(BEFORE)
    try:
        FollowUp = old.get_model("followups", "FollowUp")
        now = timezone.now()
        rows = {}
        for status, cause in [("open", ""), ("overdue", ""), ("resolved", "price")]:
            # Today's models for the answer: no signal, no follow-up of today's.
            invitation = InvitationFactory()
            response = Response.objects.create(
                invitation=invitation,
                campaign=invitation.campaign,
                survey=invitation.campaign.survey,
                customer=invitation.customer,
                score=2,
            )
            rows[status] = FollowUp.objects.create(
                response_id=response.pk,
                status=status,
                root_cause=cause,
                due_at=now - timedelta(hours=1),
                resolved_at=now if cause else None,
            ).pk

        new = migrate(AFTER)

        FollowUp = new.get_model("followups", "FollowUp")
        got = {s: FollowUp.objects.get(pk=pk) for s, pk in rows.items()}
        assert (got["open"].status, got["overdue"].status) == ("new", "new")
        assert got["resolved"].status == "resolved"
        assert got["resolved"].root_cause.code == "price"
        overdue = got["overdue"]
        assert (
            overdue.customer_id
            == Response.objects.get(pk=overdue.response_id).customer_id
        )
        assert got["overdue"].team is None
        rules = new.get_model("followups", "FollowUpRule").objects.order_by("position")
        assert [(r.survey_kind, r.score_high) for r in rules] == [
            ("nps", 6),
            ("csat", 2),
            ("ces", 3),
        ]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
