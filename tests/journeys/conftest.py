import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def themes_forgotten():
    """surveys.themes caches what it found; each test finds its own."""
    cache.clear()
