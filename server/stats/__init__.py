"""The dashboard's figures (bảng điều khiển, issue 19, docs/dashboard.md).

``figures.py`` names the columns, levels, days and the median's histogram; ``rollups.py``
computes a day's cell from the raw rows and folds the queued cells (one worker) or rebuilds
them all; ``query.py`` answers a figure over a period from the rollups (:func:`query.stats`);
``items.py`` lists the records behind one cell; ``report.py`` writes the monthly .xlsx
workbook from :func:`query.stats`; ``errors.py`` its refusals.
"""
