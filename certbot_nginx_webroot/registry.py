"""A registry of implementations by name: name -> "module:Class", the
module imported only when that name is chosen (controllers/, stores/)."""
import importlib
from typing import Any, Mapping

from certbot_nginx_webroot.problems import Problem


def lookup(registry: Mapping[str, str], kind: str, what: str) -> Any:
    """The class registered as kind; what names the registry in the refusal."""
    try:
        module_name, class_name = registry[kind].split(":")
    except KeyError:
        raise Problem(f"unknown {what} {kind!r}; known: "
                      f"{', '.join(sorted(registry))}") from None
    return getattr(importlib.import_module(module_name), class_name)
