"""The renderer: data source -> filtered rows -> report -> PDF (or text) -> email.

Pure parts (filters, reports, charts, text, mail.build_message, result) are separate from the
I/O parts (sources, pdf, mail.send, run) so the former unit-test fast without servers.
"""
