"""The accountants' console: the JSON API (``routes``) and the web pages (``pages``) of one
FastAPI app (``app``), standing on what they share (``console``: the request context, who the
caller is, CSRF) and on ``queries`` (the read models) and ``auth``.

May import: the sync engine and everything below it (``sync``, ``mappings``, ``billing``,
``core``, ``finsync.config``/``db``) and the job names of ``scheduler``. Never the service or
the CLI, which sit above it.
"""
