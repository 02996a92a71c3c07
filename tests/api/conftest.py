"""The API's personas: staff with a token, a CX agent, an outsider, anonymous."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory, agent


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def token(staff):
    return Token.objects.create(user=staff).key


@pytest.fixture
def api(token):
    """A client of a staff integrator, signed in with a token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def cx_agent(db):
    """A CX agent: not staff, but in the agents group."""
    return agent()


@pytest.fixture
def agent_api(cx_agent):
    """A CX agent's browser session."""
    client = APIClient()
    client.force_login(cx_agent)
    return client


@pytest.fixture
def outsider_api(db):
    """A signed-in user who is neither staff nor in a CX group."""
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory()).key}"
    )
    return client


@pytest.fixture
def anonymous_api():
    return APIClient()
