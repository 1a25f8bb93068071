"""`kubectl tidings`: day-2 work on ScheduledReports with the user's own kubeconfig and rights.

Installed as the `kubectl-tidings` console script, which kubectl finds on PATH as a plugin
(plugins/tidings.yaml is the krew manifest). Everything goes through the API as the user: the
plugin never needs more than the user's role (view for get/status/deliveries/preview/doctor's
reads, edit for run, run --at, resend, test, suspend, resume, reactivate, doctor's probes), and
preview reads the referenced Secrets with the user's access, checked first with a
SelfSubjectAccessReview and named on stderr with the user it runs as. Flags parse as kubectl's
do: `-n`, `-A`, `--context`, `--kubeconfig` and `-o wide|yaml|json` go before or after the
subcommand.

Modules: api (the calls, as the user), commands (get, status, run, test, deliveries, ...),
windows (run --at and resend: annotations the operator acts on, controller/reruns.py), doctor,
cli (the parser and main).
"""

from tidings.contract import REPORT_UID_LABEL
from tidings.kubectl_plugin.api import Api, PluginError
from tidings.kubectl_plugin.cli import EXAMPLES, build_parser, main
from tidings.kubectl_plugin.commands import (
    deliveries_table,
    get_table,
    one_address,
    parse_addresses,
    parse_duration,
    status_text,
    zone_of,
)
from tidings.kubectl_plugin.doctor import (
    FAIL,
    OK,
    RENDER_SCRIPT,
    SKIP,
    _render_verdict,
    check_version,
    crd_drift,
    sample_report,
)

__all__ = [
    "EXAMPLES",
    "FAIL",
    "OK",
    "RENDER_SCRIPT",
    "REPORT_UID_LABEL",
    "SKIP",
    "Api",
    "PluginError",
    "_render_verdict",
    "build_parser",
    "check_version",
    "crd_drift",
    "deliveries_table",
    "get_table",
    "main",
    "one_address",
    "parse_addresses",
    "parse_duration",
    "sample_report",
    "status_text",
    "zone_of",
]
