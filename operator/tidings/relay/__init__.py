"""The delivery relay (docs/relay.md): renderer pods submit their mail here, authenticated by a
projected service-account token; it forwards to the platform relay, with the platform
credentials, only what the pod's report admits.

- policy: pure decisions (who the token names, which run a Job is, which recipients it admits)
- identity: TokenReview and the pod -> Job -> (CronJob ->) ScheduledReport lookups
- dedupe: one forwarded copy per recipient and (report, scheduled window, trigger)
- upstream: the platform relay, through tidings.renderer.mail's transport
- server: the SMTP front (aiosmtpd)
- pod: what the operator adds to a renderer pod to submit here
"""
