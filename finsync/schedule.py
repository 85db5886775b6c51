"""The names of the service's scheduled jobs and of their job store's table.

They are what the console reads back from the job store (``api.queries``) and what the
scheduler (top-level ``scheduler.py``) files its jobs under; stable, so a restarted service
finds its own jobs. A foundation module: it imports nothing.
"""

#: ``sync:<target>``: every ``[service] sync_interval_minutes``, extract and push one target.
SYNC_JOB_PREFIX = "sync:"
#: Every ``retry_sweep_minutes``: push what is due on every target, then alert.
RETRY_JOB = "retry-sweep"
#: On ``report_day`` at ``report_time``: the workbook of the month just ended.
REPORT_JOB = "monthly-report"
#: The job store's table in the state database (created by APScheduler on first start).
JOBS_TABLE = "finsync_scheduler_jobs"
