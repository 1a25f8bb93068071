"""The Tidings operator: ScheduledReport -> CronJob, Job outcomes -> status.

Pure (plain dicts in, decisions out; unit- and table-tested): settings (and settings_load,
which reads them from the environment), cronjob (manifests),
cronjob_plan (create, patch or leave it), status (phase, conditions, the fields a reconcile or
an outcome writes), run_outcome (what a finished Job tells), run_ownership (whether a Job is
the operator's own run), capacity (capacity waits, which held runs to release), records,
testsend, reruns (run-at and resend: which window, whom, the Job), permissions,
recipient_groups, objects, webhook_tls, zones (a namespace's default time zone), status_guard
(a status write over Disabled), owner_notices (when and what spec.owners are told),
channel_secrets (each channel's Secret key in the pod). The result
line and every label and annotation: tidings.contract.

I/O, by what triggers it: handlers (the kopf registrations) -> reconcile (a report event;
rerun_start starts its run-at and resend Jobs), job_outcomes, run_checks, run_start and
run_release (a Job event), cronjob_index (a CronJob event, start-up), namespace_zone (a
namespace's default time zone), namespace_end (a namespace being deleted),
recipient_groups_store (a RecipientGroup or report event: the report's recipients ConfigMap),
group_admission (the RecipientGroup webhook), owner_notices_send (a counted run's notice, in the
background), slot_guard (one run per wall-clock slot across DST: a webhook, a Job event and a
periodic check; tidings.slots decides); writes (status and Events), retry (conflicts),
record_store and webhook_tls_store, over kube (the API seam). state holds what the process
keeps between events.
"""
