"""
Reading an uploaded CSV file as a stream of rows: the header's line, then each
record with the line it starts on, never the whole file in memory.
"""

import csv
import io
import re
from collections.abc import Iterator
from decimal import Decimal

from django.utils.translation import gettext as _

# Excel writes a byte order mark before UTF-8; utf-8-sig reads past it.
ENCODING = "utf-8-sig"
# A cell that is a plain decimal number becomes a JSON number in properties:
# no leading zeros (a postcode, "007"), no exponent, at most 15 significant
# digits (what a float, and so JavaScript, keeps exactly).
NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
NUMBER_DIGITS = 15


class CSVFileError(Exception):
    """The file as a whole cannot be read as the import's CSV: the API's 400."""


class CSVLineError(Exception):
    """One record cannot be read; the rest of the file may still be."""


def _is_text(cell: str) -> bool:
    """Whether a cell read with surrogateescape was UTF-8 (and has no NUL)."""
    return "\x00" not in cell and not any("\udc80" <= c <= "\udcff" for c in cell)


def property_value(text: str):
    """Returns a CSV cell as a property value: a number if it is a plain one."""
    if NUMBER.fullmatch(text) and len(text.lstrip("-").replace(".", "")) <= (
        NUMBER_DIGITS
    ):
        return int(text) if "." not in text else float(Decimal(text))
    return text


class CSVRows:
    """
    The records of a CSV file (bytes, UTF-8) as dicts by column name (the known
    ones in lowercase, whatever the header's case), with the
    line each starts on (the header is line 1). Iterating yields (line, row) or,
    for a record that cannot be read, (line, CSVLineError); a file that cannot be
    read at all raises CSVFileError from the constructor.
    """

    def __init__(
        self,
        binary,
        *,
        known: set[str],
        required: set[str],
        any_of: set[str] = frozenset(),
    ):
        # Bytes that are not UTF-8 become lone surrogates, found in the line they
        # are on, rather than an exception wherever the decoder's chunk ends.
        self.text = io.TextIOWrapper(
            binary, encoding=ENCODING, errors="surrogateescape", newline=""
        )
        self.reader = csv.reader(self.text, strict=True)
        try:
            header = next(self.reader, None)
        except csv.Error as e:
            raise CSVFileError(_("The file is not CSV: %(error)s.") % {"error": e})
        if not header or not any(cell.strip() for cell in header):
            raise CSVFileError(_("The file is empty: give a header line first."))
        if not all(_is_text(cell) for cell in header):
            raise CSVFileError(_("The file is not UTF-8 text."))
        self.columns = [cell.strip() for cell in header]
        for number, name in enumerate(self.columns, 1):
            if not name:
                raise CSVFileError(
                    _("Column %(number)d of the header has no name.")
                    % {"number": number}
                )
        # The known columns in any case; the others (properties) as written.
        self.columns = [
            name.lower() if name.lower() in known else name for name in self.columns
        ]
        seen = set()
        for name in self.columns:
            if name in seen:
                raise CSVFileError(
                    _("The header names the column %(name)s twice.") % {"name": name}
                )
            seen.add(name)
        missing = sorted(required - seen)
        if missing:
            raise CSVFileError(
                _("The header has no %(columns)s column.")
                % {"columns": ", ".join(missing)}
            )
        if any_of and not any_of & seen:
            raise CSVFileError(
                _("The header has none of the columns %(columns)s.")
                % {"columns": ", ".join(sorted(any_of))}
            )

    def __iter__(self) -> Iterator[tuple[int, dict | CSVLineError]]:
        width = len(self.columns)
        while True:
            line = self.reader.line_num + 1
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield (
                    line,
                    CSVLineError(
                        _(
                            "This line is not CSV (%(error)s); the rest of the file "
                            "was not read."
                        )
                        % {"error": e}
                    ),
                )
                return
            if not all(_is_text(cell) for cell in cells):
                yield line, CSVLineError(_("This line is not UTF-8 text."))
                continue
            if not cells:
                continue  # a blank line
            if len(cells) != width:
                yield (
                    line,
                    CSVLineError(
                        _("This line has %(cells)d cells; the header has %(width)d.")
                        % {"cells": len(cells), "width": width}
                    ),
                )
                continue
            yield line, dict(zip(self.columns, cells, strict=True))

    def detach(self) -> None:
        """Leaves the binary file open for its owner to close."""
        self.text.detach()
