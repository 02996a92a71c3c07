"""
The settings `make bench` serves cxm with: cxm's own, plus the bare reference view
of bench/urls.py. Nothing of the application changes.
"""

from cxm.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
