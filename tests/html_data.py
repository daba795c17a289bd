"""The HTML report's findings read back from its data block (kaudit/writers/html_data.py), for tests
that look for what a finding says: the page's script puts messages together in the browser, so
they are not in the file as written."""
from __future__ import annotations

import json
import re
from typing import Any

DATA_BLOCK = re.compile(r'<script type="application/json" id="kaudit-data">(.*?)</script>', re.S)


def report_data(html: str) -> dict[str, Any]:
    match = DATA_BLOCK.search(html)
    assert match is not None, "no data block in the page"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def messages(html: str) -> list[str]:
    """Each finding's message, then those of the findings joined to it, as the page shows them."""
    data = report_data(html)
    strings, resources = data["s"], data["res"]

    def fill(template: int, resource: int, container: int) -> str:
        _kind, namespace, name, *_ = resources[resource]
        names = {-1: strings[name], -2: strings[container] if container >= 0 else "",
                 -3: strings[namespace] if namespace >= 0 else ""}
        return "".join(strings[part] if part >= 0 else names[part] for part in data["tpl"][template])

    said = []
    for f in data["f"]:
        said.append(fill(f[8], f[2], f[7]))
        said.extend(fill(j[2], j[4] if j[4] >= 0 else f[2], j[6]) for j in f[10] or ())
    return said


def joined_rules(html: str, rule: str) -> set[str]:
    """The rules joined to the findings of `rule`."""
    data = report_data(html)
    ids = [data["s"][entry[0]] for entry in data["rules"]]
    return {ids[j[0]] for f in data["f"] if ids[f[1]] == rule for j in f[10] or ()}
