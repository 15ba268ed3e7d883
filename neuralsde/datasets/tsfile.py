"""A small reader for the ``.ts`` format of the UEA/UCR time series classification archive.

Format: ``#`` comment lines, ``@key value`` header lines, then ``@data`` followed by one line
per series: channels separated by ``:``, values within a channel by ``,``, the class label
last (when ``@classLabel true``). ``?`` marks a missing value. Series of unequal length
(``@equalLength false``) are padded with NaN at their end, or, with ``ragged=True``, returned
as a list of arrays of their own lengths; time-stamped files are not supported (the shipped
files have none).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_ts"]


def read_ts(path: str | Path, ragged: bool = False):
    """Read a ``.ts`` file.

    Returns:
        ``(values, labels, header)``: ``values`` of shape ``(series, time, channel)`` float64
        (NaN for ``?``; series shorter than the longest padded with NaN), or with
        ``ragged=True`` a list of ``(L_i, channel)`` arrays (what
        :meth:`neuralsde.data.IrregularBatch.coerce` reads as variable-length series);
        ``labels`` ``(series,)`` strings or None, and the header fields.

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
    n_channels = {len(row) for row in rows}
    if len(n_channels) != 1:
        raise ValueError(f"{path}: series have different channel counts {sorted(n_channels)}")
    lengths = [{len(ch) for ch in row} for row in rows]
    if any(len(ls) != 1 for ls in lengths):
        raise ValueError(f"{path}: the channels of one series differ in length")
    if ragged:
        series = [np.stack(row, axis=-1) for row in rows]
        return series, (np.asarray(labels) if labels else None), header
    longest = max(next(iter(ls)) for ls in lengths)
    values = np.full((len(rows), longest, n_channels.pop()), np.nan)
    for i, row in enumerate(rows):
        values[i, : len(row[0])] = np.stack(row, axis=-1)
    return values, (np.asarray(labels) if labels else None), header


def _parse_channel(text: str) -> np.ndarray:
    return np.asarray(
        [np.nan if v.strip() == "?" else float(v) for v in text.split(",")], dtype=np.float64
    )
