"""Optional dependencies: import one, or say in one line what to install.

The base install runs every command the README shows. Azure (Application Insights,
Entra ID tokens, Functions) and the T-SQL linter are extras; pyodbc is in the base
install but needs the unixODBC system library at import time. One table here says
what to install for which missing piece, for the library and for the CLI's safety net.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from bot_core.errors import ConfigError

# Top-level module -> the extra that installs it.
EXTRAS = {"azure": "azure", "opentelemetry": "azure", "sqlglot": "tsql"}
# Shared library (without its version) -> the Debian/Ubuntu package that provides it.
SYSTEM_LIBRARIES = {"libodbc.so": "unixodbc", "libodbcinst.so": "unixodbc"}
_LIBRARY = re.compile(r"(lib[\w+-]+\.so)(\.\d+)*")


class MissingDependency(ConfigError):
    """An optional package or a system library is not installed (exit code 2)."""


def install_hint(exc: ImportError) -> str | None:
    """What to install for this import failure, or None when botctl does not know it."""
    library = _LIBRARY.search(str(exc))
    if library and library[1] in SYSTEM_LIBRARIES:
        return f"the system library {library[0]} is missing: apt-get install {SYSTEM_LIBRARIES[library[1]]}"
    top = (exc.name or "").split(".")[0]
    if top in EXTRAS:
        return f"{top} is not installed: pip install 'botctl[{EXTRAS[top]}]'"
    return None


def require(module: str, purpose: str) -> ModuleType:
    """Import *module* for *purpose*; a missing extra or system library is one MissingDependency line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = install_hint(exc) or f"{module} cannot be imported ({exc}): reinstall botctl"
        raise MissingDependency(f"{purpose} needs {module}; {hint}") from None
