"""Report files as the API server would see them: YAML documents with unquoted dates kept as the
strings kubectl sends. Shared by `tidings validate` and the renderer's local runs."""

from __future__ import annotations

from typing import Any

import yaml


def load_documents(text: str) -> list[Any]:
    """All YAML documents, with unquoted dates kept as strings as kubectl sends them."""

    class Loader(yaml.SafeLoader):
        pass

    # Drop the timestamp resolver: `from: 2024-01-01` must stay the string the API would see.
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    try:
        return [doc for doc in yaml.load_all(text, Loader=Loader) if doc is not None]
    except yaml.YAMLError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        # PyYAML's constructors raise these for tagged values they cannot build, such as
        # `!!float abc`, `!!int abc`, `!!timestamp abc` or `!!bool maybe`.
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise yaml.YAMLError(f"a tagged value cannot be read ({detail})") from None
