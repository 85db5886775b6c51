"""Open a workbook the way finance does: LibreOffice headless, formulas recalculated on load.

LibreOffice only recalculates an .xlsx on load when its settings say so (the default trusts the
cached values, and openpyxl writes none). Each call runs with its own throw-away user profile
whose registry sets "recalculate on load: always" for OOXML and ODF files, so the converted
file holds the values LibreOffice computed itself.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

INSTALL = "apt-get install -y --no-install-recommends libreoffice-calc poppler-utils"

_REGISTRY = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
           xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
  <prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
  <prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str:
    """Path of the LibreOffice binary; fails the test with the install command if missing."""
    for name in ("soffice", "libreoffice"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"LibreOffice is not installed; install it with: {INSTALL}", pytrace=False)


def pdftoppm() -> str:
    """Path of poppler's pdftoppm; fails the test with the install command if missing."""
    path = shutil.which("pdftoppm")
    if not path:
        pytest.fail(f"pdftoppm is not installed; install it with: {INSTALL}", pytrace=False)
    return path


def convert(src: Path, out_dir: Path, target: str = "xlsx", *, timeout: float = 180) -> Path:
    """Convert ``src`` with LibreOffice (recalculating on load) into ``out_dir``.

    ``target`` is a LibreOffice filter spec such as ``xlsx`` or ``pdf``. Returns the new file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        user = Path(profile) / "user"
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(_REGISTRY, encoding="utf-8")
        cmd = [
            soffice(),
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--norestore",
            "--convert-to",
            target,
            "--outdir",
            str(out_dir),
            str(src),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    produced = out_dir / f"{src.stem}.{target.split(':')[0]}"
    if done.returncode != 0 or not produced.exists():
        raise AssertionError(
            f"LibreOffice conversion failed ({done.returncode}): {done.stdout} {done.stderr}"
        )
    return produced
