"""Fill deployment templates with values.

Templates use ``${name}`` placeholders only, so NGINX's own ``$variables`` pass through
untouched (``string.Template`` would treat both alike). A placeholder with no value is an
error naming it, never an empty string in a config file.
"""

import re
from collections.abc import Mapping
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")


class MissingTemplateValue(KeyError):
    """A template names a value that was not supplied."""


def render_text(text: str, values: Mapping[str, object], *, source: str = "template") -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise MissingTemplateValue(f"{source} needs a value for '{name}'")
        return str(values[name])

    return PLACEHOLDER.sub(fill, text)


def render_file(template: Path, values: Mapping[str, object], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_text(template.read_text(), values, source=str(template)))
    return out
