"""Rule tests for examples/demo-rules.py: `docker-enforcer test examples/demo-cases.py --rules examples/demo-rules.py`.

Each case is a container (saved `docker inspect` output, captured from a real engine) and the exact rules it
must violate; every rule is judged for every case. Write cases like these before a rules change ships.
"""

EXAMPLES = "../tests/library/examples/"

cases = [
    {
        "name": "a container without a memory limit",
        "container": EXAMPLES + "plain.json",
        "violates": ["must have memory limit", "no latest tag"],
    },
    {
        "name": "a memory limit, an image pinned by tag",
        "container": EXAMPLES + "image-hub-tagged.json",
        "violates": ["must have memory limit"],
    },
    {
        "name": "the host's /etc mounted writable",
        "container": EXAMPLES + "bind-etc-rw.json",
        "violates": [
            "no sensitive host directories mounted",
            "must have memory limit",
            "uses valid dirs for volumes",
            "no latest tag",
        ],
    },
    {
        "name": "a memory limit set: only the latest tag is recorded",
        "container": EXAMPLES + "memory-64m.json",
        "violates": ["no latest tag"],
    },
]
