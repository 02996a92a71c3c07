from django.db.models import Count
from django.shortcuts import get_object_or_404, render

from cxm.access import cx_staff_required

from . import selectors
from .forms import JourneyMapFilterForm
from .models import Journey

# The emotion curve's drawing: one step per touchpoint, −2…2 from bottom to top.
CURVE_STEP = 100
CURVE_MARGIN = 48
CURVE_HEIGHT = 220
CURVE_UNIT = 40  # pixels per emotion point


def _y(emotion: float) -> float:
    return round(CURVE_HEIGHT / 2 - emotion * CURVE_UNIT, 1)


def curve_drawing(points: list) -> dict:
    """Returns the SVG geometry of the emotion curve of a map's touchpoints."""
    expected, measured = [], []
    for number, point in enumerate(points):
        x = CURVE_MARGIN + number * CURVE_STEP
        expected.append({"x": x, "y": _y(point.expected_emotion)})
        if point.measured_emotion is not None:
            measured.append({"x": x, "y": _y(point.measured_emotion)})
    return {
        "width": 2 * CURVE_MARGIN + max(len(points) - 1, 1) * CURVE_STEP,
        "height": CURVE_HEIGHT,
        "expected": expected,
        "measured": measured,
        "expected_points": " ".join(f"{p['x']},{p['y']}" for p in expected),
        "measured_points": " ".join(f"{p['x']},{p['y']}" for p in measured),
        "levels": [{"value": v, "y": _y(v)} for v in (2, 1, 0, -1, -2)],
    }


@cx_staff_required
def journey_list(request):
    journeys = Journey.objects.select_related("persona").annotate(
        stage_count=Count("stages", distinct=True),
        touchpoint_count=Count("stages__touchpoints", distinct=True),
    )
    return render(request, "journeys/list.html", {"journeys": journeys})


@cx_staff_required
def journey_map(request, journey_id: int):
    journey = get_object_or_404(
        Journey.objects.select_related("persona"), pk=journey_id
    )
    # Bound even without parameters: every filter is optional, with defaults.
    form = JourneyMapFilterForm(request.GET)
    if not form.is_valid():
        context = {"journey": journey, "form": form, "map": None}
        return render(request, "journeys/map.html", context, status=400)
    # The form's cleaned filters are the selector's: since, until, segment, channel.
    figures = selectors.journey_map(journey=journey, **form.cleaned_data)
    context = {
        "journey": journey,
        "form": form,
        "map": figures,
        "curve": curve_drawing(figures.curve),
    }
    return render(request, "journeys/map.html", context)
