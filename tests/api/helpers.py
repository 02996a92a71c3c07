"""Helpers the API tests share."""

from surveys.services import response_record
from tests.factories import InvitationFactory


def answer(score: int, comment: str = "", **invitation):
    """Records a customer's answer through the real service; returns the response."""
    return response_record(
        invitation=InvitationFactory(**invitation), score=score, comment=comment
    )


def page_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]
