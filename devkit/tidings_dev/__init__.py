"""Development tooling for Tidings: a real local control plane (cluster), a real node beside it
(node), the process plumbing both use (procs) and hack/dev-cluster's command line (__main__).
Imports run one way: __main__ → node → cluster → procs. Not part of the product: the wheel and
the renderer image never contain it; hack/, tests/ and bench/ import it."""
