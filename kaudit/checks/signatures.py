"""`image-signature`: images whose cosign signature is missing, untrusted or for something else.

The verification itself (network) happens before the engine, only with --verify-images; this
template reads its results and reports nothing when images were not checked."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.registry.outcomes import UNSIGNED, UNTRUSTED, WRONG_DIGEST, WRONG_REFERENCE

PROBLEMS = {"unsigned": {UNSIGNED}, "untrusted": {UNTRUSTED}, "wrong-subject": {WRONG_DIGEST, WRONG_REFERENCE}}
PARAMS = {"type": "object", "required": ["problem"], "additionalProperties": False,
          "properties": {"problem": {"enum": sorted(PROBLEMS),
                                      "description": "which --verify-images outcome to report: unsigned, untrusted "
                                                     "(no trusted key), wrong-subject (signed for another digest or name)"}}}


def _bind(params: Mapping[str, Any], target: str) -> Check:
    statuses = PROBLEMS[params["problem"]]

    def check(subject: Target) -> Iterable[Hit]:
        container = subject.container
        assert container is not None and subject.lookup is not None
        image = container.body.get("image")
        facts = subject.lookup.memo.get("images", {}).get(image) if isinstance(image, str) else None
        if facts is None or facts.signature is None or facts.signature.status not in statuses:
            return ()
        return (Hit(container.path + ("image",), {"image": facts.image, "detail": facts.signature.detail,
                                                  "digest": facts.digest or "?"}),)

    return check


TEMPLATES = [Template("image-signature", "cosign signature verification results (with --verify-images).",
                      frozenset({"container"}), PARAMS, _bind,
                      needs=frozenset({"verified-images"}))]
