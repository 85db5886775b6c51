"""The accountants' console: the JSON API (``routes``) and the web pages (``pages``) of one
FastAPI app (``app``), standing on what they share (``console``: the request context, who the
caller is, CSRF) and on ``queries`` (the read models) and ``auth``; and the service's HTTP
edge (``serving``: ``/health`` and the console on uvicorn or a WSGI server).

May import: the sync engine and everything below it (``sync``, ``mappings``, ``billing``,
``core``, ``finsync.config``/``db``/``schedule``: the job names). Never the service
(``scheduler.py``) or the CLI, which sit above it.
"""
