"""What the staff pages' navigation needs to know of the signed-in user."""

from functools import partial

from .selectors import may_see_reports


def navigation(request) -> dict:
    # A callable, so only a page that draws the navigation pays its query.
    return {"may_see_reports": partial(may_see_reports, request.user)}
