"""The Tidings operator: ScheduledReport -> CronJob, Job outcomes -> status.

Pure parts (settings, cronjob, status) hold the decisions and are unit-tested; handlers.py is
the thin kopf layer that reads, applies and patches.
"""
