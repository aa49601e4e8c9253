"""What a transfer to NARA carries besides the records: the bag, its metadata file, its file names.

**The bag** (BagIt, RFC 8493, version 1.0) is written member by member into the encrypted
container, never to the disk in clear (each payload file as it is made, keeping only its
digests): ``bagit.txt``, ``bag-info.txt`` (Bagging-Date,
Payload-Oxum, External-Identifier = the disclosure id, Bag-Software-Agent), ``manifest-sha256.txt``
and ``manifest-sha512.txt`` over the payload under ``data/``, and ``tagmanifest-*.txt`` over the
tag files (``NOTICE.txt`` and ``EXPORT.json`` among them), the two algorithms LoC's
bagit-python writes by default. The tests open the container with 7-Zip and validate the bag with
``bagit.Bag(path).validate()`` (LoC's bagit-python): the library checks what this module writes.

**The metadata file**: NARA Bulletin 2015-04, "Metadata Guidance for the Transfer of Permanent
Electronic Records" (https://www.archives.gov/records-mgmt/bulletins/2015/2015-04.html) asks for
the metadata in a pipe-delimited CSV file (NARA's Records Express, 2016-03-21: "the metadata should
be captured in a pipe delimited Comma Separated Values (CSV) file ... use the pipe character ( | )
as a delimiter"). Only the bulletin's opening sections (purpose, "What is metadata?") were found
in the reference copies available when this was written; the text of its Appendix A (the element
definitions, and which are mandatory) and Appendix B (file naming) was NOT found. The elements
below are those the bulletin's Appendix A is known to define for file-level metadata — File Name,
Record ID, Title, Description, Creator, Creation Date, Rights — and are NOT checked against its
text: check them against the bulletin (or NARA's current metadata template) before a transfer.
One row per payload file, the header row first; a value holding the pipe, a quote or a line
break is quoted the CSV way.

**File names** follow NARA's published file-naming practice (Records Express, 2017-08-22, quoted
at https://kevinbgunn.wordpress.com/2017/08/28/best-practices-for-file-naming-national-archives/;
Appendix B itself not found, see above): unique and persistent (twentyday's own ids), no spaces or
symbols (letters, digits, hyphen, underscore), a period and an extension, under 35 characters
where an id allows, dates as YYYYMMDD. An attachment's own name is never a file name: it is kept
in the metadata and the JSON.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from twentyday import __version__

#: The file-level elements of NARA Bulletin 2015-04, Appendix A, in order (see the module docstring:
#: not checked against the appendix's text).
METADATA_ELEMENTS = ("File Name", "Record ID", "Title", "Description", "Creator", "Creation Date", "Rights")
METADATA_FILE = "metadata.csv"
DIGESTS = ("sha256", "sha512")


@dataclass(frozen=True)
class FileMetadata:
    """One payload file's row of the metadata file."""

    file_name: str
    record_ids: tuple[str, ...]
    title: str
    description: str
    creator: str
    creation_date: str
    rights: str

    def values(self) -> list[str]:
        return [self.file_name, ";".join(self.record_ids), self.title, self.description, self.creator,
                self.creation_date, self.rights]


def metadata_file(rows: Sequence[FileMetadata]) -> bytes:
    """The pipe-delimited metadata file (UTF-8, CRLF line ends as CSV has them)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="|", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(METADATA_ELEMENTS)
    for row in rows:
        writer.writerow(row.values())
    return out.getvalue().encode("utf-8")


_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str, limit: int = 24) -> str:
    """Letters and digits of ``text``, lower case, runs of anything else as one hyphen (never empty)."""
    cleaned = _UNSAFE.sub("-", text.lower()).strip("-")[:limit].strip("-")
    return cleaned or "x"


def extension(name: str) -> str:
    """A safe extension from an attachment's own name ('.bin' when it has none worth keeping)."""
    _, dot, ext = name.rpartition(".")
    ext = ext.lower()
    return f".{ext}" if dot and re.fullmatch(r"[a-z0-9]{1,8}", ext) else ".bin"


def _single_line(text: str) -> str:
    return " ".join(text.split())


class Bag:
    """A bag written into a container as it is built: each payload file at once (only its digests
    are kept), the tag files and manifests at :meth:`finish`."""

    def __init__(self, root: str, add: Callable[[str, bytes], None]) -> None:
        self.root = root.rstrip("/") + "/"
        self._add = add
        self._payload: list[tuple[str, int, dict[str, str]]] = []
        self._tags: list[tuple[str, bytes]] = []

    def payload(self, path: str, data: bytes) -> None:
        """Write ``data`` at ``data/<path>`` in the bag."""
        name = f"data/{path}"
        self._add(self.root + name, data)
        self._payload.append((name, len(data), _digests(data)))

    def tag(self, name: str, data: bytes) -> None:
        self._tags.append((name, data))

    def finish(self, *, bagging_date: datetime, identifier: str, description: str) -> None:
        """Write bagit.txt, bag-info.txt, the tag files, the payload manifests and the tag manifests."""
        octets = sum(size for _, size, _ in self._payload)
        info = "".join(f"{key}: {_single_line(value)}\n" for key, value in (
            ("Bagging-Date", bagging_date.date().isoformat()),
            ("Payload-Oxum", f"{octets}.{len(self._payload)}"),
            ("External-Identifier", identifier),
            ("External-Description", description),
            ("Bag-Software-Agent", f"twentyday {__version__}"),
        ))
        tags = [("bagit.txt", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"),
                ("bag-info.txt", info.encode("utf-8")), *self._tags]
        for algorithm in DIGESTS:
            tags.append((f"manifest-{algorithm}.txt", "".join(
                f"{digests[algorithm]}  {name}\n" for name, _, digests in self._payload).encode()))
        for algorithm in DIGESTS:
            tags.append((f"tagmanifest-{algorithm}.txt", "".join(
                f"{_digests(data)[algorithm]}  {name}\n" for name, data in tags
                if not name.startswith("tagmanifest-")).encode()))
        for name, data in tags:
            self._add(self.root + name, data)


def _digests(data: bytes) -> dict[str, str]:
    return {algorithm: hashlib.new(algorithm, data).hexdigest() for algorithm in DIGESTS}
