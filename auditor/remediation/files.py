"""Model files a remedy hands over: skops format (no pickle), the same bytes for the same model.

skops names each array file after the Python id of the array, records object ids and stamps each
zip entry with the current time, so two saves of one model differ; ``skops_bytes`` rewrites the
file with files and ids numbered in schema order and one fixed date, so its SHA-256 in the manifest
is reproducible.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def stable_skops(data: bytes) -> bytes:
    """A skops file rewritten so the same detector gives the same bytes: skops names each array file
    after the Python id of the array, records object ids, and stamps each entry with the current time;
    here files and ids are numbered in the order ``schema.json`` names them and every entry gets the
    same date."""
    src = zipfile.ZipFile(io.BytesIO(data))
    schema = src.read("schema.json").decode("utf-8")
    names = [n for n in src.namelist() if n != "schema.json"]
    order = {n: i for i, n in enumerate(sorted(names, key=lambda n: (schema.find(f'"{n}"'), n)))}
    renamed = {n: f"{order[n]}{n[n.rfind('.'):] if '.' in n else ''}" for n in names}
    if names:  # each file is named once in the schema, as a quoted string
        pattern = re.compile('"(' + "|".join(re.escape(n) for n in names) + ')"')
        schema = pattern.sub(lambda m: f'"{renamed[m.group(1)]}"', schema)
    ids: dict[str, int] = {}  # object ids (shared objects share one): numbered in order of appearance
    schema = re.sub(r'"__id__": (\d+)', lambda m: f'"__id__": {ids.setdefault(m.group(1), len(ids))}', schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            name = "schema.json" if info.filename == "schema.json" else renamed[info.filename]
            entry = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            entry.compress_type = info.compress_type
            entry.external_attr = info.external_attr
            dst.writestr(entry, schema.encode("utf-8") if name == "schema.json" else src.read(info.filename))
    return out.getvalue()


def skops_bytes(model: Any, *, compress: bool = True) -> bytes:
    """A fitted model as a skops file, byte-identical for the same model."""
    import skops.io as sio

    return stable_skops(bytes(sio.dumps(model, compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)))
