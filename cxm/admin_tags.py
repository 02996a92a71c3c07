"""
Template filters of cxm's admin templates (TEMPLATES' "cxm_admin" library).
"""

from django import template
from django.utils.html import format_html, strip_tags
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

register = template.Library()


@register.filter
def labelled_cells(row, headers):
    """
    Returns the cells of a change list's row (Django's "<td …>…</td>" strings),
    each with its column's name as data-label, which a phone's card shows before
    the value (static/cxm/admin-lists.css). The checkbox column has none.
    """
    cells = []
    for cell, header in zip(row, headers, strict=False):
        if "action-checkbox" in header["class_attrib"]:
            cells.append(cell)
            continue
        label = format_html(' data-label="{}"', capfirst(strip_tags(header["text"])))
        # Django writes each cell as "<td" or "<th" and its attributes.
        cells.append(mark_safe(cell[:3] + label + cell[3:]))
    return cells
