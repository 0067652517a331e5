"""Write a markdown report of what the working tree changes against a base revision.

    python tools/pr_report.py --base main --out reports/pr

Params and metrics diffs come from DVC as markdown tables; plots are rendered by
`dvc plots diff` into <out>/plots/index.html. The report is <out>/report.md.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def dvc(*args: str) -> str:
    """Run dvc from the same environment as this script; a failure ends the report with its message."""
    dvc_bin = shutil.which("dvc", path=str(Path(sys.executable).parent)) or "dvc"
    result = subprocess.run([dvc_bin, *args], capture_output=True, text=True)
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"
        sys.exit(f"error: dvc {' '.join(args)}: {reason}")
    return result.stdout.strip()


def report(base: str, out: Path) -> str:
    params = dvc("params", "diff", base, "--md")
    metrics = dvc("metrics", "diff", base, "--md", "--precision", "4")
    dvc("plots", "diff", base, "-o", str(out / "plots"))
    return "\n".join(
        [
            f"## Pipeline changes against `{base}`",
            "",
            "### Params",
            "",
            params or "No params changed.",
            "",
            "### Metrics",
            "",
            metrics or "No metrics changed.",
            "",
            "### Plots",
            "",
            f"Confusion matrix, ROC, precision-recall and feature importance, `{base}` against this branch: "
            f"`{out / 'plots' / 'index.html'}`.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="main", help="git revision to compare with (default: main)")
    parser.add_argument("--out", type=Path, default=Path("reports/pr"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    text = report(args.base, args.out)
    (args.out / "report.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
