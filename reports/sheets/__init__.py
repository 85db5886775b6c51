"""The monthly workbook's sheets, one module each, over the shared writer (``writer``).

Each sheet module writes its sheet from the figures of ``reports.monthly`` (and the rows of
``reports.documents``); ``reports.workbook`` puts them together in order. Sheets import the
writer and the figures (the Summary also the Revenue sheet's table ranges), never
``reports.workbook``.
"""
