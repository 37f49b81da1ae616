"""Image paths written in annotation files, resolved inside the dataset folder only.

A COCO ``file_name`` or a LabelMe ``imagePath`` is text from a file anyone may have made: absolute
(``/etc/passwd``), climbing out (``../../x.png``, ``..\\..\\x.png`` from Windows tools) or
URL-encoded (``%2e%2e%2fx.png``). Joined naively it reads any file of the machine into the project
and its exports. :class:`DatasetRoot` resolves such a name against a base folder and accepts the
result only inside the root the user pointed at (by its real path, so a symbolic-link folder
pointing outside does not count as inside); anything else comes back with the reason, for the
import to skip the image naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from workbench.utils.jsonfile import check_regular_file

__all__ = ["DatasetRoot", "Resolved", "json_files"]


@dataclass(frozen=True)
class Resolved:
    """Where a written name leads: ``path`` (an existing file inside the root), or why not."""

    path: Path | None = None
    escapes: str | None = None
    """The reason, when every reading of the name leads outside the root."""


def _forms(name: str) -> list[str]:
    """The readings of a written name: as written (Windows separators as ``/``), then URL-decoded."""
    plain = name.replace("\\", "/") if "\\" in name else name
    if "%" not in plain:
        return [plain]
    forms = [plain]
    decoded = unquote(plain).replace("\\", "/")
    if decoded != plain:
        forms.append(decoded)
    return forms


@dataclass
class DatasetRoot:
    """The folder an import reads images from; names resolve inside it or not at all."""

    root: Path
    _real: str = field(init=False)
    _lexical: str = field(init=False)
    _real_dirs: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _bases: dict[Path, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._lexical = os.path.normpath(os.path.abspath(self.root))
        self._real = os.path.realpath(self.root)

    @staticmethod
    def _within(path: str, root: str) -> bool:
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    def _real_dir(self, folder: str) -> str:
        """The real path of a folder, cached: most images of a dataset share a few folders."""
        real = self._real_dirs.get(folder)
        if real is None:
            real = self._real_dirs[folder] = os.path.realpath(folder)
        return real

    def inside(self, path: str) -> bool:
        """Whether ``path`` (absolute, normalised) lies inside the root, its folders' links resolved."""
        if not self._within(path, self._lexical):
            return False
        return self._within(self._real_dir(os.path.dirname(path)), self._real)

    def resolve(self, base: Path, name: str) -> Resolved:
        """``name`` read from a file whose images sit in ``base``: an existing file inside the root,
        else None, with ``escapes`` set when a reading of the name leads outside it (a file missing
        inside the root: neither)."""
        escapes = None
        base_abs = self._bases.get(base)
        if base_abs is None:
            base_abs = self._bases[base] = os.path.abspath(base)
        for form in _forms(name):
            if form.startswith("file://"):
                form = form[len("file://"):]
            target = os.path.normpath(os.path.join(base_abs, form))
            if not self.inside(target):
                escapes = f"leads outside the folder {self.root}, not read"
            elif os.path.lexists(target):  # a link or special file: the decoder says why it is skipped
                return Resolved(path=Path(target))
        return Resolved(escapes=escapes)


def json_files(
    folder_or_file: Path, skipped: list[tuple[str, str]], *, error: type[Exception], what: str
) -> list[Path]:
    """The ``*.json`` files of a folder (recursive, sorted; links to folders not followed) or the file.

    A ``.json`` in the folder that is no regular file (a named pipe, a dangling link, a link loop)
    goes to ``skipped`` as ``(path, reason)`` instead of being opened; a file given directly is
    returned for the reader to refuse by name.
    """
    if folder_or_file.is_dir():
        files: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(folder_or_file):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.lower().endswith(".json"):
                    continue
                p = Path(dirpath) / name
                try:
                    check_regular_file(p, error=error)
                except error as exc:
                    skipped.append((str(p), str(exc).removeprefix(f"{p}: ")))
                    continue
                files.append(p)
        if not files and skipped:
            name, reason = skipped[0]
            raise error(f"{folder_or_file}: no readable {what} in this folder ({name}: {reason})")
        if not files:
            raise error(f"{folder_or_file}: no {what} in this folder")
        return files
    if os.path.lexists(folder_or_file):
        return [folder_or_file]
    raise error(f"{folder_or_file}: no such file or folder")
