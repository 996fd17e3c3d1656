"""How a document's shell examples are cut into steps and compared with what they print."""

from __future__ import annotations

from tests.support.shell_doc import matches, shell_blocks

DOCUMENT = """\
# Title

```bash
X=1
# Print it
echo "$X"
# -> 1
echo '{"id": "a1", "version": 2}'  # -> {"id":"…","version":2}
```

<!-- not run: needs a Kafka broker -->
```bash
kafka-console-consumer --topic t
```

```bash
curl -s -X POST $API/models -H "$J" \\
  -d '{"name": "x"}'
# -> {"version":1,
#    "position":2}
```
"""


def test_blocks_are_cut_into_steps_with_what_they_say_they_print() -> None:
    first, last = shell_blocks(DOCUMENT)
    assert [(s.line, s.command, s.expected) for s in first.steps] == [
        (4, "X=1", None),
        (6, 'echo "$X"', "1"),
        (8, """echo '{"id": "a1", "version": 2}'""", '{"id":"…","version":2}'),
    ]
    (post,) = last.steps
    assert post.line == 17
    assert post.command.endswith("""-d '{"name": "x"}'""")
    assert post.expected == '{"version":1, "position":2}'


def test_output_is_compared_with_whitespace_ignored_and_an_ellipsis_for_anything() -> None:
    assert matches('{"id":"…","version":2}', '{"id": "76f7", "version": 2}')
    assert not matches('{"id":"…","version":2}', '{"id": "76f7", "version": 3}')
    assert matches("…", "")
    assert not matches("1", "12")
