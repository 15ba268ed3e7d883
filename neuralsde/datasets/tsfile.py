"""A small reader for the ``.ts`` format of the UEA/UCR time series classification archive.

Format: ``#`` comment lines, ``@key value`` header lines, then ``@data`` followed by one line
per series: channels separated by ``:``, values within a channel by ``,``, the class label
last (when ``@classLabel true``). ``?`` marks a missing value. Only equal-length series
without time stamps are supported (what the shipped files use).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_ts"]


def read_ts(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, dict[str, str]]:
    """Read a ``.ts`` file.

    Returns:
        ``(values, labels, header)``: ``values`` of shape ``(series, time, channel)`` float64
        (NaN for ``?``), ``labels`` ``(series,)`` strings or None, and the header fields.

    Example:
        >>> from neuralsde.datasets.files_path import data_file
        >>> x, y, h = read_ts(data_file("arrow_head", "ArrowHead_TRAIN.ts"))
        >>> x.shape, h["problemname"]
        ((36, 251, 1), 'ArrowHead')
    """
    header: dict[str, str] = {}
    rows: list[list[np.ndarray]] = []
    labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.lower() == "@data":
                    in_data = True
                elif line.startswith("@"):
                    key, _, value = line[1:].partition(" ")
                    header[key.lower()] = value.strip()
                continue
            if header.get("timestamps", "false").lower() == "true":
                raise ValueError(f"{path}: time-stamped .ts files are not supported")
            parts = line.split(":")
            has_label = header.get("classlabel", "false").lower().startswith("true")
            if has_label:
                labels.append(parts[-1].strip())
                parts = parts[:-1]
            try:
                rows.append([_parse_channel(p) for p in parts])
            except ValueError as err:
                raise ValueError(f"{path}, line {lineno}: {err}") from None
    if not rows:
        raise ValueError(f"{path} holds no series after @data")
    lengths = {len(ch) for row in rows for ch in row}
    n_channels = {len(row) for row in rows}
    if len(lengths) != 1 or len(n_channels) != 1:
        raise ValueError(
            f"{path}: only equal-length series are supported, got lengths {sorted(lengths)} "
            f"and channel counts {sorted(n_channels)}"
        )
    values = np.stack([np.stack(row, axis=-1) for row in rows])
    return values, (np.asarray(labels) if labels else None), header


def _parse_channel(text: str) -> np.ndarray:
    return np.asarray(
        [np.nan if v.strip() == "?" else float(v) for v in text.split(",")], dtype=np.float64
    )
