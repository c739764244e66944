# The packaged default: a rule that matches no container, as in the original docker-enforcer.
rules = [
    {
        "name": "always false",
        "rule": lambda c: False,
    }
]
