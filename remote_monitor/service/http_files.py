"""What the HTTP endpoint serves: the files below <out>/reports and <out>/results a URL may name, their
ETags, the manifest a mirror fetches, and the Content-Security-Policy of the report pages."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

REPORT_SUFFIXES = {".html", ".json", ".csv", ".png"}
_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@lru_cache(maxsize=1)
def page_csp() -> str:
    """Content-Security-Policy of the report pages: only the templates' own inline scripts (by hash) run,
    no inline event handlers, no script from elsewhere, nothing to be framed or posted."""
    templates = resources.files("report_templates")
    hashes = set()
    for template in templates.iterdir():
        if not template.name.endswith(".j2"):
            continue
        for text in _SCRIPT.findall(template.read_text("utf-8")):
            body = text
            if text.strip() == "{{ plotly_js|safe }}":
                body = templates.joinpath("vendor/plotly-basic-4.1.1.min.js").read_text("utf-8")
            elif "{{" in text or "{%" in text:
                continue  # a script with data in it is never allowed to run
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            hashes.add(f"'sha256-{digest}'")
    return ("default-src 'none'; script-src " + " ".join(sorted(hashes)) + "; style-src 'unsafe-inline'; "
            "img-src 'self' data:; font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def etag(path: Path) -> str:
    """A strong ETag from the file's size and modification time."""
    st = path.stat()
    return '"' + hashlib.sha1(f"{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest()[:20] + '"'


def resolve(out_root: Path, url_path: str) -> Path | None:
    """The file a GET may serve, or None (404) for anything else."""
    parts = unquote(url_path).split("/")[1:]
    if parts in ([""], ["index.html"]):
        parts = ["reports", "index.html"]
    if len(parts) == 1 and Path(parts[0]).suffix in REPORT_SUFFIXES:
        parts = ["reports", parts[0]]  # pages link each other relatively, also when served from "/"
    if not parts or not all(_SAFE_PART.match(p) for p in parts):  # no '..', no empty, no hidden files
        return None
    if parts[0] == "reports" and len(parts) == 2 and Path(parts[1]).suffix in REPORT_SUFFIXES:
        path = out_root / "reports" / parts[1]
    elif parts[0] == "results" and len(parts) >= 4 and parts[-1].endswith(".json"):
        path = out_root.joinpath(*parts)
    else:
        return None
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    served = out_root.resolve() / parts[0]  # the key and state never: only reports/ and results/
    return real if real.is_file() and real.is_relative_to(served) else None


def manifest(out_root: Path) -> list[dict[str, Any]]:
    """Every file a mirror may fetch: reports and results JSON."""
    files = [p for p in sorted((out_root / "reports").glob("*")) if p.suffix in REPORT_SUFFIXES]
    files += sorted((out_root / "results").glob("*/*/scan.json"))
    files += sorted((out_root / "results").glob("*/*/points/*.json"))
    entries = []
    for path in files:
        if path.name.startswith(".") or path.is_symlink():
            continue
        try:
            st = path.stat()
            entries.append({"path": str(path.relative_to(out_root)), "size": st.st_size,
                            "mtime": st.st_mtime, "etag": etag(path)})
        except OSError:
            continue  # replaced between listing and stat
    return entries
