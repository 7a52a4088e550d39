"""Rebuild .dvc/plots/offline.html: DVC's plot page with vega, vega-lite and vega-embed inlined (from the npm registry),
so `dvc plots show` draws with no network. `make offline-plots` runs it; the versions are the ones dvc-render loads."""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

LIBS = [("vega", "5.20.2", "package/build/vega.min.js"), ("vega-lite", "5.2.0", "package/build/vega-lite.min.js"),
        ("vega-embed", "6.18.2", "package/build/vega-embed.min.js")]
OUT = Path(__file__).resolve().parents[1] / ".dvc" / "plots" / "offline.html"


def main() -> None:
    scripts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, version, member in LIBS:
            packed = subprocess.run(["npm", "pack", "--silent", f"{name}@{version}"], cwd=tmp, check=True,
                                    capture_output=True, text=True).stdout.strip().splitlines()[-1]
            with tarfile.open(Path(tmp) / packed) as archive:
                code = archive.extractfile(member).read().decode("utf-8")
            for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}"):  # dvc-render replaces these anywhere
                assert placeholder not in code, f"{name} contains {placeholder}"
            scripts.append(f"    <script>/* {name} {version} (BSD-3-Clause), npm registry */\n{code}\n    </script>")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(f"""<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>koemo: DVC plots</title>
    <!-- `dvc plots show` / `dvc plots diff` fill this page (.dvc/config: plots.html_template). vega, vega-lite and
         vega-embed are inlined (the versions dvc-render loads from a CDN), so the page draws with no network.
         Rebuilt by `make offline-plots`. -->
{chr(10).join(scripts)}
    <style>
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
""", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
