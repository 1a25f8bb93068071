"""Development tooling for Tidings: a real local control plane (cluster), a real node beside it
(node) and the process plumbing both use. Not part of the product: the wheel and the renderer
image never contain it; hack/, tests/ and bench/ import it."""
