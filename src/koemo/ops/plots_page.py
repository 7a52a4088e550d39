"""The HTML template `dvc plots show` fills (`.dvc/config` → `plots.html_template`): a page that draws with no network.

DVC's own page loads vega, vega-lite and vega-embed from a CDN, so on an offline machine it is blank. This template
carries the three libraries inline (from their npm packages, BSD-3-Clause) and leaves out DVC's `{scripts}`
placeholder, so no CDN tag is ever added. It also wraps `vegaEmbed` to give the dvclive curves titles a reader
understands (`dvclive/text/plots/metrics/fold0/lr.tsv` → `text model: learning rate per epoch (CV fold 0)`) and to
mark each chart `data-drawn` once vega has rendered it (what tests/test_plots_page.py checks in headless Chromium).

Regenerate (a new vega release, say): `make plots-template`, i.e.

    npm pack vega@5 vega-lite@5 vega-embed@6   # in an empty directory, then untar each
    python -m koemo.ops.plots_page --npm DIR --out .dvc/plots.html
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LIBRARIES = (("vega", "vega.min.js"), ("vega-lite", "vega-lite.min.js"), ("vega-embed", "vega-embed.min.js"))
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")
METRIC_NAMES = {"train_loss": "training loss", "lr": "learning rate", "valid_loss": "validation loss (NLL)",
                "valid_macro_f1": "validation macro-F1", "valid_ua": "validation UA",
                "valid_accuracy": "validation accuracy (WA)"}

READABLE = """
(function () {
  var NAMES = %s;
  function readable(title) {
    var text = typeof title === "string" ? title : (title && title.text) || "";
    var m = /dvclive\\/([^\\/]+)\\/plots\\/metrics\\/fold(\\d+)\\/(.+)\\.tsv$/.exec(text);
    if (!m) return title;
    var name = NAMES[m[3]] || m[3].replace(/_/g, " ");
    return m[1] + " model: " + name + " per epoch (CV fold " + m[2] + ")";
  }
  var embed = window.vegaEmbed;
  window.vegaEmbed = function (el, spec, opts) {
    if (spec && spec.title !== undefined) spec.title = readable(spec.title);
    return embed(el, spec, Object.assign({actions: false, renderer: "svg"}, opts || {})).then(function (result) {
      document.querySelector(el).setAttribute("data-drawn", "1");
      return result;
    }, function (error) {
      document.querySelector(el).setAttribute("data-error", String(error));
      throw error;
    });
  };
})();
"""

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>koemo plots</title>
    <!-- %(versions)s, inlined from their npm packages (BSD-3-Clause, (c) the University of Washington
         Interactive Data Lab): this page needs no network. Written by `make plots-template` (koemo.ops.plots_page). -->
%(scripts)s
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def build_template(npm_dir: Path) -> str:
    """The template text from unpacked npm packages below `npm_dir` (`<dir>/<name>-<version>/build/<file>`)."""
    scripts, versions = [], []
    for name, file in LIBRARIES:
        found = sorted(p for p in npm_dir.glob(f"*/build/{file}") if json.loads(
            (p.parents[1] / "package.json").read_text(encoding="utf-8"))["name"] == name)
        if not found:
            raise FileNotFoundError(f"no {name} package (build/{file}) below {npm_dir}: run `npm pack {name}` there and "
                                    "untar it")
        package = json.loads((found[-1].parents[1] / "package.json").read_text(encoding="utf-8"))
        code = found[-1].read_text(encoding="utf-8")
        bad = [s for s in ("</script", *PLACEHOLDERS) if s in code]
        if bad:
            raise ValueError(f"{found[-1]} contains {bad}: it cannot be inlined in a DVC template")
        versions.append(f"{name} {package['version']}")
        scripts.append(f"    <script>/* {name} {package['version']} */\n{code}\n    </script>")
    scripts.append(f"    <script>{READABLE % json.dumps(METRIC_NAMES)}</script>")
    return PAGE % {"versions": ", ".join(versions), "scripts": "\n".join(scripts)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--npm", type=Path, required=True, help="directory holding the untarred npm packages")
    parser.add_argument("--out", type=Path, default=Path(".dvc/plots.html"))
    args = parser.parse_args(argv)
    from koemo.core.io import write_text

    write_text(args.out, build_template(args.npm))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
