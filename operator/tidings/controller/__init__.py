"""The Tidings operator: ScheduledReport -> CronJob, Job outcomes -> status.

Pure (plain dicts in, decisions out; unit- and table-tested): settings (and settings_load,
which reads them from the environment), cronjob (manifests),
cronjob_plan (create, patch or leave it), status (phase, conditions, the fields a reconcile or
an outcome writes), run_outcome (what a finished Job tells), run_ownership (whether a Job is
the operator's own run), capacity (capacity waits, which held runs to release), records,
testsend, permissions, objects, webhook_tls. The result line and every label and annotation:
tidings.contract.

I/O, by what triggers it: handlers (the kopf registrations) -> reconcile (a report event),
job_outcomes, run_checks, run_start and run_release (a Job event), cronjob_index (a CronJob
event, start-up), namespace_end (a namespace being deleted); writes (status and Events), retry
(conflicts), record_store and webhook_tls_store, over kube (the API seam). state holds what
the process keeps between events.
"""
