"""EMDB metadata: the entry header XML (schemas v1.9 and v3) and the REST search.

EMDB's own Python client (``emdb`` on PyPI) has its API address fixed in code
(``make_request`` builds ``https://www.ebi.ac.uk/emdb/api`` + endpoint) and a
fixed 10 s timeout, so it cannot be pointed at a mirror or a loopback test
server; this is a thin client of our own over the same search endpoint
(``{api}/search/{query}?rows=&fl=&wt=csv``, Solr query syntax).
"""

from __future__ import annotations

import csv
import io
import os
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from cryosse.acquire.download import DownloadError, VerifyError, fetch_bytes

# EMDB v3 contour sources; a recommended level from any of them counts as the
# depositors'/EMDB's ("author"); "SIMULATED" is written by our simulator only.
_CONTOUR_SOURCES = {"AUTHOR": "author", "EMDB": "author", "SOFTWARE": "author", "SIMULATED": "simulated"}


class HeaderError(ValueError):
    """An EMDB header that cannot be used; the message names the file and the cause."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if _local(e.tag) == name]


def _first_text(root: ET.Element, *path: str) -> str | None:
    """Text of the first element reached by following local tag names (any depth for the first)."""
    for start in _find_all(root, path[0]):
        node: ET.Element | None = start
        for name in path[1:]:
            node = next((c for c in node if _local(c.tag) == name), None) if node is not None else None
        if node is not None and node.text and node.text.strip():
            return node.text.strip()
    return None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_header(source: str | os.PathLike | bytes) -> dict[str, Any]:
    """Metadata from an EMDB header XML (v1.9 ``emdEntry`` or v3 ``emd`` root).

    Returns emdb_id, schema, resolution (A or None), contour_level, contour_source
    (author / simulated / none), voxel_size_xyz (list or None), fitted_pdbs (upper
    case, in order), release_date (map release, ISO) and method.
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        root = ET.fromstring(source) if isinstance(source, bytes) else ET.parse(source).getroot()
    except (ET.ParseError, OSError) as exc:
        raise HeaderError(f"{name}: not a readable EMDB header XML ({exc})") from exc
    tag = _local(root.tag)
    if tag == "emdEntry":
        out = _parse_v19(root)
    elif tag == "emd":
        out = _parse_v3(root)
    else:
        raise HeaderError(f"{name}: root element <{tag}> is neither <emd> (v3) nor <emdEntry> (v1.9)")
    if not out["emdb_id"]:
        raise HeaderError(f"{name}: the header names no EMDB entry")
    return out


def _parse_v19(root: ET.Element) -> dict[str, Any]:
    code = root.get("accessCode", "")
    contour = next(iter(_find_all(root, "contourLevel")), None)
    level = _float(contour.text) if contour is not None else None
    src = (contour.get("source", "author") if contour is not None else "").upper()
    spacing = [_float(_first_text(root, "pixelSpacing", f"pixel{a}")) for a in "XYZ"]
    fitted = [normalise_pdb_id(e.text) for e in _find_all(root, "pdbEntryId") if e.text and e.text.strip()]
    return {
        "emdb_id": f"EMD-{code}" if code else "",
        "schema": root.get("version", "1.9"),
        "resolution": _float(_first_text(root, "resolutionByAuthor")),
        "contour_level": level,
        "contour_source": _CONTOUR_SOURCES.get(src, "author") if level is not None else "none",
        "voxel_size_xyz": spacing if all(v for v in spacing) else None,
        "fitted_pdbs": list(dict.fromkeys(fitted)),
        "release_date": _first_text(root, "mapReleaseDate"),
        "method": _first_text(root, "processing", "method"),
        "map_kbytes": next(
            (_float(f.get("sizeKb")) for f in _find_all(root, "file") if f.get("type") == "map"), None
        ),
    }


def normalise_pdb_id(text: str) -> str:
    """A PDB id as the archives file it: ``5MDX``; an extended ``pdb_00005mdx`` becomes ``5MDX``
    while the archive serves the 4-character form; a new 8-character one stays ``PDB_1ABCDE23``."""
    t = text.strip().lower()
    if t.startswith("pdb_0000") and len(t) == 12:
        return t[8:].upper()
    return t.upper()


def _child(node: ET.Element | None, name: str) -> ET.Element | None:
    return next((c for c in node if _local(c.tag) == name), None) if node is not None else None


def _children(node: ET.Element | None, name: str) -> list[ET.Element]:
    return [c for c in node if _local(c.tag) == name] if node is not None else []


def _text(node: ET.Element | None) -> str | None:
    return node.text.strip() if node is not None and node.text and node.text.strip() else None


def _parse_v3(root: ET.Element) -> dict[str, Any]:
    # The primary map is /emd/map. Masks, half-maps and additional maps (under
    # interpretation/) carry contour lists of their own: never take their levels.
    emap = _child(root, "map")
    level, source = None, "none"
    contours = _children(_child(emap, "contour_list"), "contour")
    contours.sort(key=lambda c: c.get("primary", "false").lower() != "true")
    for c in contours:
        lv = _float(_text(_child(c, "level")))
        if lv is not None:
            src = (_text(_child(c, "source")) or "AUTHOR").upper()
            level, source = lv, _CONTOUR_SOURCES.get(src, "author")
            break
    resolution = _float(_first_text(root, "final_reconstruction", "resolution"))
    if resolution is None:
        resolution = _float(_first_text(root, "resolution"))
    spacing = [_float(_text(_child(_child(emap, "pixel_spacing"), a))) for a in "xyz"]
    refs = []
    for ref in _find_all(root, "pdb_reference"):
        pid = _text(_child(ref, "pdb_id"))
        if pid:
            frame = (_text(_child(_child(ref, "relationship"), "in_frame")) or "").upper()
            refs.append((frame == "NOOVERLAP", normalise_pdb_id(pid)))
    refs.sort(key=lambda r: r[0])  # models that do not overlap the map (NOOVERLAP) go last
    return {
        "emdb_id": root.get("emdb_id", "").upper(),
        "schema": root.get("version", "3"),
        "resolution": resolution,
        "contour_level": level,
        "contour_source": source,
        "voxel_size_xyz": spacing if all(v for v in spacing) else None,
        "fitted_pdbs": list(dict.fromkeys(pid for _, pid in refs)),
        "release_date": _first_text(root, "key_dates", "map_release"),
        "method": _first_text(root, "structure_determination", "method"),
        "map_kbytes": _float(emap.get("size_kbytes")) if emap is not None else None,
    }


def header_v3_xml(
    emdb_id: str,
    resolution: float,
    contour_level: float | None,
    contour_source: str,
    voxel_size: float,
    fitted_pdbs: list[str],
    release_date: str,
    method: str = "singleParticle",
    title: str = "",
    map_kbytes: float | None = None,
) -> bytes:
    """A minimal header in the v3 layout (what ``parse_header`` reads), for simulated entries."""
    root = ET.Element("emd", {"emdb_id": emdb_id, "version": "3.0.0.0"})
    admin = ET.SubElement(root, "admin")
    dates = ET.SubElement(admin, "key_dates")
    ET.SubElement(dates, "map_release").text = release_date
    ET.SubElement(admin, "title").text = title
    xref = ET.SubElement(ET.SubElement(root, "crossreferences"), "pdb_list")
    for pdb in fitted_pdbs:
        ET.SubElement(ET.SubElement(xref, "pdb_reference"), "pdb_id").text = pdb.lower()
    sd = ET.SubElement(ET.SubElement(root, "structure_determination_list"), "structure_determination")
    ET.SubElement(sd, "method").text = method
    proc = ET.SubElement(sd, "singleparticle_processing")
    fr = ET.SubElement(proc, "final_reconstruction")
    ET.SubElement(fr, "resolution", {"units": "Å", "res_type": "BY AUTHOR"}).text = f"{resolution:g}"
    emap = ET.SubElement(
        root, "map", {"format": "CCP4", **({"size_kbytes": f"{map_kbytes:g}"} if map_kbytes else {})}
    )
    ET.SubElement(emap, "file").text = f"emd_{emdb_id.split('-')[1]}.map.gz"
    if contour_level is not None:
        cl = ET.SubElement(ET.SubElement(emap, "contour_list"), "contour", {"primary": "true"})
        ET.SubElement(cl, "level").text = f"{contour_level:.6g}"
        ET.SubElement(cl, "source").text = contour_source.upper()
    ps = ET.SubElement(emap, "pixel_spacing")
    for a in "xyz":
        ET.SubElement(ps, a, {"units": "Å"}).text = f"{voxel_size:g}"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --- search -----------------------------------------------------------------

SEARCH_FIELDS = "emdb_id,resolution,fitted_pdbs,structure_determination_method,release_date"


def search_query(
    resolution_min: float, resolution_max: float, methods: list[str], release_date_max: str = ""
) -> str:
    """Solr query: released entries, resolution in [min, max] (inclusive), a fitted model, one of
    the methods, and (``release_date_max``, ISO date) released on or before that day."""
    q = f'current_status:"REL" AND resolution:[{resolution_min:g} TO {resolution_max:g}] AND fitted_pdbs:[* TO *]'
    if methods:
        q += " AND structure_determination_method:(" + " OR ".join(methods) + ")"
    if release_date_max:
        q += f" AND release_date:[* TO {release_date_max}T23:59:59Z]"
    return q


def search_url(api: str, query: str, rows: int) -> str:
    params = urllib.parse.urlencode({"rows": rows, "fl": SEARCH_FIELDS, "wt": "csv", "download": "false"})
    return f"{api.rstrip('/')}/search/{urllib.parse.quote(query, safe='')}?{params}"


def parse_search_csv(
    text: str, resolution_min: float, resolution_max: float, release_date_max: str = ""
) -> list[dict[str, Any]]:
    """Rows of the search CSV as entries (emdb_id, pdb_id = first fitted model, resolution, ...).

    The resolution window and the fitted model are checked again here, so a
    server that ignores part of the query cannot let other entries in.
    """
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        emdb_id = (row.get("emdb_id") or "").strip().upper()
        res = _float((row.get("resolution") or "").strip())
        fitted = [
            normalise_pdb_id(p)
            for p in (row.get("fitted_pdbs") or "").replace(";", ",").split(",")
            if p.strip()
        ]
        released = (row.get("release_date") or "").strip().split("T")[0]
        if not emdb_id or res is None or not fitted:
            continue
        if not (resolution_min <= res <= resolution_max):
            continue
        if release_date_max and released and released > release_date_max:
            continue
        out.append(
            {
                "emdb_id": emdb_id,
                "pdb_id": fitted[0],
                "chain": "",
                "resolution": res,
                "fitted_pdbs": ",".join(fitted),
                "method": (row.get("structure_determination_method") or "").strip(),
                "release_date": released,
            }
        )
    out.sort(key=lambda r: int(r["emdb_id"].split("-")[1]) if r["emdb_id"].split("-")[-1].isdigit() else 0)
    return out


def search_entries(
    api: str,
    resolution_min: float,
    resolution_max: float,
    methods: list[str],
    rows: int,
    retries: int = 4,
    backoff_s: float = 2.0,
    timeout_s: float = 120.0,
    release_date_max: str = "",
) -> list[dict[str, Any]]:
    """Released EMDB entries at resolution_min..resolution_max A with a fitted model (released by a date)."""
    query = search_query(resolution_min, resolution_max, methods, release_date_max)
    url = search_url(api, query, rows)
    try:
        data = fetch_bytes(url, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s, what="EMDB search")
    except DownloadError as exc:  # no network, a server down: name the query and the address
        raise DownloadError(
            f"EMDB search {query!r} at {api}: {exc.reason}", exc.reason, exc.permanent
        ) from exc
    text = data.decode("utf-8", "replace")
    header = next(csv.reader(io.StringIO(text)), [])
    if "emdb_id" not in [h.strip() for h in header]:
        start = " ".join(text.split())[:120]
        raise ValueError(f"EMDB search {query!r}: the answer is not the expected CSV (it starts {start!r})")
    n_raw = sum(1 for _ in csv.DictReader(io.StringIO(text)))
    if n_raw == 0:
        raise ValueError(f"EMDB search {query!r}: no entries returned; check the query and acquire.emdb_api")
    if n_raw >= rows:
        raise ValueError(
            f"EMDB search {query!r}: {n_raw} rows, the most asked for (acquire.search_rows = {rows}): "
            "there are probably more; raise acquire.search_rows"
        )
    return parse_search_csv(text, resolution_min, resolution_max, release_date_max)


def search_table(settings: Any, path: str | os.PathLike) -> list[dict[str, Any]]:
    """Run the EMDB search of ``settings`` (an :class:`~cryosse.acquire.stage.AcquireSettings`)
    and write its entry table to ``path``, headed by the date, the query and the address it
    came from; nothing is written when the search fails. Returns the entries."""
    import datetime

    query = search_query(
        settings.resolution_min, settings.resolution_max, list(settings.methods), settings.release_date_max
    )
    rows = search_entries(
        settings.emdb_api,
        settings.resolution_min,
        settings.resolution_max,
        list(settings.methods),
        settings.search_rows,
        settings.retries,
        settings.backoff_s,
        settings.timeout_s,
        settings.release_date_max,
    )
    if not rows:
        raise ValueError(f"EMDB search {query!r}: no entry passes the resolution, model and date checks")
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_entry_table(
        path,
        rows,
        comments=[
            f"EMDB search of {when}: {len(rows)} entries",
            f"query: {query}",
            f"address: {settings.emdb_api}",
        ],
    )
    return rows


def write_entry_table(
    path: str | os.PathLike, rows: list[dict[str, Any]], comments: tuple[str, ...] | list[str] = ()
) -> None:
    """Write the entry table (emdb_id, pdb_id, chain + informative columns), atomically, after
    ``comments`` as ``#`` lines."""
    from cryosse.io import atomic_write

    cols = ["emdb_id", "pdb_id", "chain", "resolution", "fitted_pdbs", "method", "release_date"]
    with atomic_write(Path(path), newline="") as fh:
        fh.writelines(f"# {c}\n" for c in comments)
        w = csv.DictWriter(fh, fieldnames=cols, delimiter="\t", extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def verify_header(path: str | os.PathLike) -> None:
    """A downloaded EMDB header that parses (the verifier :func:`download.fetch_file` takes)."""
    try:
        parse_header(Path(path))
    except HeaderError as exc:
        raise VerifyError(f"{Path(path).name}: bad EMDB header ({str(exc).split(': ', 1)[-1]})") from exc
