"""kaudit: a Kubernetes security posture auditor."""

__version__ = "0.1.0"
