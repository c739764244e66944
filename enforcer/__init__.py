"""docker-enforcer: audits and enforces the host owner's rules on every container of a Docker host."""

__version__ = "1.0.0.dev0"
