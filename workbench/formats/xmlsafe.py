"""XML annotation files (CVAT, Pascal VOC) parsed without trusting them.

An XML file anyone may have made can declare entities that expand a few hundred bytes into
gigabytes ("billion laughs") or that read a file of the machine (``<!ENTITY x SYSTEM
"file:///etc/passwd">``). No annotation tool writes a DOCTYPE, so :func:`parse_xml` refuses any
document type declaration, entity declaration or external entity reference outright (what
defusedxml does, without the dependency), and any other problem is one line naming the file.
The tree is built by expat straight into ``xml.etree`` elements.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat

from workbench.domain import ValidationError
from workbench.utils.jsonfile import check_regular_file

__all__ = ["parse_xml", "read_xml_file"]


class _Refused(Exception):
    """Raised from inside an expat handler; expat passes it through unchanged."""


def _refuse(what: str):  # noqa: ANN202 - an expat handler of any signature
    def handler(*_args: object) -> None:
        raise _Refused(what)

    return handler


def parse_xml(data: bytes | str, source: str, *, error: type[Exception] = ValidationError) -> ET.Element:
    """The root element of the XML ``data`` read from ``source`` (a file name, for messages)."""
    parser = expat.ParserCreate()
    builder = ET.TreeBuilder()
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse("a document type declaration (DOCTYPE)")
    parser.EntityDeclHandler = _refuse("an entity declaration")
    parser.ExternalEntityRefHandler = _refuse("an external entity reference")
    try:
        parser.Parse(data, True)
        return builder.close()
    except _Refused as exc:
        raise error(f"{source}: not read: the XML holds {exc}, which annotation files never need") from None
    except expat.ExpatError as exc:
        raise error(
            f"{source}: not valid XML ({expat.errors.messages.get(exc.code, exc)} "
            f"at line {exc.lineno}, column {exc.offset + 1})"
        ) from None
    except AssertionError:  # TreeBuilder: tags out of order (expat refuses that first)
        raise error(f"{source}: not valid XML (unbalanced tags)") from None


def read_xml_file(path: Path, *, error: type[Exception] = ValidationError) -> ET.Element:
    """The root element of the XML file ``path``; any problem is one ``error`` naming the file."""
    path = Path(path)
    check_regular_file(path, error=error)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return parse_xml(data, str(path), error=error)


def finite_float(raw: str | None) -> float | None:
    """The number an XML attribute or text holds, or None where it is absent, not a number or not finite
    (the callers name the element in their own error)."""
    try:
        v = float(raw) if raw is not None else math.nan
    except ValueError:
        return None
    return v if math.isfinite(v) else None
