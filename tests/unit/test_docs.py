"""README.md and docs/*.md name only what exists, and document everything an operator can name.

Both ways, against the code: `make` targets, `mail2ticket` commands and options, template parameters and
outputs, inbox fields and global parameters (with their defaults), environment variables, alarms and log
messages; the names of docs/deploying.md are the template's; inbox examples validate; links resolve.
"""

import argparse
import posixpath
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.local.resources import load_template
from mail2ticket.cli import main
from mail2ticket.cli.local import ENV_VAR as LOCAL_STACK_VARIABLE
from mail2ticket.config.models import GlobalConfig, InboxConfig
from mail2ticket.config.validation import validate_inbox
from mail2ticket.errors import ConfigurationError
from mail2ticket.store.deployed import OUTPUT_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "common" / "mail2ticket"
README_MAX_LINES = 200

# Names of other products' APIs that the docs quote (an AWS error code, an SQS call, an Exchange property):
# not this project's, so neither in its template nor in its code.
QUOTED_NAMES = frozenset({"AccessDenied", "PidTagMessageSize", "SendMessageBatch"})


# ------------------------------------------------------------------------------------------------ reading


@dataclass
class Page:
    """One Markdown page: its code (fenced blocks, inline spans) and its tables, by section."""

    name: str
    text: str
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (language, body)
    spans: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        fence = re.compile(r"^```([\w-]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
        self.blocks = [(m.group(1), m.group(2)) for m in fence.finditer(self.text)]
        prose = fence.sub("", self.text)
        self.spans = [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)]

    def code(self) -> Iterator[str]:
        """Each line of a fenced block (continuation lines joined), then each inline span."""
        for _, body in self.blocks:
            for line in body.replace("\\\n", " ").splitlines():
                yield re.sub(r"(?:^|\s)#.*$", "", line)  # a shell comment ('#unrouted' is no comment)
        yield from self.spans

    def section(self, heading: str) -> str:
        """The text under a heading, up to the next heading of the same or a higher level."""
        match = re.search(rf"^(#+) {re.escape(heading)}\n", self.text, re.MULTILINE)
        assert match, f"{self.name} has no section {heading!r}"
        level = len(match.group(1))
        end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(self.text, match.end())
        return self.text[match.end() : end.start() if end else len(self.text)]

    def table_rows(self, heading: str) -> list[list[str]]:
        """The rows of every table under a heading, each a list of its cells."""
        rows = []
        for line in self.section(heading).splitlines():
            if line.startswith("|") and not re.match(r"^\|[-:| ]+\|$", line):
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
                rows.append(cells)
        return [row for row in rows if row and row[0] not in ("field", "parameter", "output", "variable")]


def spans_in(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@cache
def real_pages() -> tuple[Page, ...]:
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return tuple(Page(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in paths)


def page(pages: tuple[Page, ...], name: str) -> Page:
    return next(p for p in pages if p.name == name)


# ------------------------------------------------------------------------------------------------ the code


@cache
def template() -> dict[str, Any]:
    return load_template()


def make_targets() -> tuple[set[str], set[str]]:
    """Every target of the Makefile, and the public ones (.PHONY)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE))
    phony = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert phony
    return targets, set(phony.group(1).replace("\\\n", " ").split())


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    options: frozenset[str]  # its own options, not --help nor the global ones


GLOBAL_DESTS = {"stack", "local", "verbose", "help"}


@cache
def commands() -> dict[tuple[str, ...], Command]:
    """Every command the CLI's parser has, with its options."""
    found: dict[tuple[str, ...], Command] = {}

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subparsers:
            for name, child in subparsers[0].choices.items():
                walk(child, (*words, name))
            return
        options = {
            flag
            for action in parser._actions
            if action.option_strings and action.dest not in GLOBAL_DESTS
            for flag in action.option_strings
        }
        found[words] = Command(words, frozenset(options))

    for name in main.COMMANDS:
        root = main.parser([name])
        [top] = [a for a in root._actions if isinstance(a, argparse._SubParsersAction)]
        walk(top.choices[name], (name,))
    return found


GLOBAL_OPTIONS = {"--stack", "--local", "-v", "--verbose"}


def package_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py")))


def stack_suffixes() -> set[str]:
    """What the template names `<stack>-…`: functions, alarms, the rule set and rule."""
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    return set(re.findall(r"\$\{AWS::StackName\}-([a-z0-9-]+)", text))


def metric_names() -> set[str]:
    """Every metric the functions count, those whose name the code builds included."""
    source = package_source()
    names = set(re.findall(r"(?:inbox_metric|add_metric)\(\s*(?:name=)?\"(\w+)\"", source))
    actions = re.search(r"_EVENT_FOR_ACTION = \{(.*?)\}", (PACKAGE / "process.py").read_text(), re.DOTALL)
    counts = re.search(
        r"for name in \(([^)]*)\):\s*metrics\.add_metric\(name=_metric\(name\)",
        (PACKAGE / "clean.py").read_text(),
    )
    assert actions and counts, "the processor's outcome metrics or the cleaner's count metrics moved"
    names |= {f"Mail{a.capitalize()}" for a in re.findall(r"\"(\w+)\":", actions.group(1))}
    names |= {n.title().replace("_", "") for n in re.findall(r"\"(\w+)\"", counts.group(1))}
    return names


def function_environment_names() -> set[str]:
    tpl = template()
    names = set(tpl["Globals"]["Function"]["Environment"]["Variables"])
    for resource in tpl["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            names |= set(resource["Properties"].get("Environment", {}).get("Variables", {}))
    return names


def settings_names() -> set[str]:
    """The variables settings.py reads, however it reads them."""
    text = (PACKAGE / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r"\"([A-Z][A-Z0-9_]{2,})\"", text))


def template_names(value: Any) -> set[str]:
    """Every mapping key and string in the template: parameters, resources, properties, values."""
    if isinstance(value, dict):
        return {str(k) for k in value} | {n for v in value.values() for n in template_names(v)}
    if isinstance(value, list):
        return {n for v in value for n in template_names(v)}
    return {value} if isinstance(value, str) else set()


# ------------------------------------------------------------------------------------------------ the checks


def invocations(pages: tuple[Page, ...]) -> Iterator[tuple[str, list[str]]]:
    """Each `mail2ticket …` the docs show: the page and its words after the command name."""
    start = re.compile(r"(?:^|[\s(\"'])(?:[\w./-]*/)?mail2ticket\s+(?=\S)")
    for doc in pages:
        for code in doc.code():
            for match in start.finditer(code):
                rest = code[match.end() :]
                rest = re.split(r"\s#|;|&&|\|\||\s\|\s", rest)[0]
                try:
                    words = shlex.split(rest)
                except ValueError:
                    words = rest.split()
                yield doc.name, words


def parse_invocation(words: list[str]) -> tuple[tuple[str, ...] | None, list[str], str | None]:
    """The command named, the options given (global ones before it included), and a problem if it names none
    that exists."""
    rest = [w.strip("[]()") for w in words]
    given = []
    while rest and rest[0] in GLOBAL_OPTIONS:
        given.append(rest[0])
        rest = rest[2:] if rest[0] == "--stack" else rest[1:]
    if not rest or rest[0].startswith("-"):
        return None, given + [w for w in rest if w.startswith("-")], None
    tree = commands()
    if rest[0] not in main.COMMANDS:
        return None, [], f"no command {rest[0]!r}"
    chosen: tuple[str, ...] = (rest.pop(0),)
    if chosen not in tree:
        subs = [w for w in rest if not w.startswith("-")]
        if not subs:
            return None, [], None  # the group named as a whole (`mail2ticket dlq`)
        if (*chosen, subs[0]) not in tree:
            return None, [], f"no command {' '.join(chosen + tuple(subs[:1]))!r}"
        chosen = (*chosen, subs[0])
        rest.remove(subs[0])
    options = [o for w in rest for o in w.split("|") if re.fullmatch(r"--?[a-z][a-z0-9-]*", o)]
    return chosen, given + options, None


def cli_problems(pages: tuple[Page, ...]) -> list[str]:
    tree = commands()
    problems, shown, given = [], set(), set()
    for name, words in invocations(pages):
        chosen, options, problem = parse_invocation(words)
        if problem:
            problems.append(f"{name}: mail2ticket {' '.join(words)}: {problem}")
            continue
        given |= {o for o in options if o in GLOBAL_OPTIONS}
        if chosen is None:
            continue
        shown.add(chosen)
        for option in options:
            if option in tree[chosen].options:
                given.add(f"{' '.join(chosen)} {option}")
            elif option not in GLOBAL_OPTIONS:
                problems.append(f"{name}: `mail2ticket {' '.join(chosen)}` has no option {option}")
    for words, command in tree.items():
        if words not in shown:
            problems.append(f"`mail2ticket {' '.join(words)}` is not documented")
        problems += [
            f"`mail2ticket {' '.join(words)} {o}` is not documented"
            for o in sorted(command.options)
            if f"{' '.join(words)} {o}" not in given and o.startswith("--")
        ]
    problems += [
        f"the global option {o} is not documented"
        for o in ("--stack", "--local", "--verbose")
        if o not in given
    ]
    return problems


def make_problems(pages: tuple[Page, ...]) -> list[str]:
    targets, public = make_targets()
    named: set[str] = set()
    problems = []
    for doc in pages:
        for code in doc.code():
            for target in re.findall(r"(?:^|[\s;&|(])make\s+([a-z][a-z0-9-]*)", code):
                if target.endswith("-"):
                    continue  # a family of targets (`make bench-…`)
                named.add(target)
                if target not in targets:
                    problems.append(f"{doc.name}: `make {target}` is no Makefile target")
    problems += [f"`make {t}` is not documented" for t in sorted(public - named)]
    return problems


def both_ways(what: str, documented: list[str], existing: set[str]) -> list[str]:
    problems = [f"{what} {n} is documented but does not exist" for n in documented if n not in existing]
    problems += [f"{what} {n} is not documented" for n in sorted(existing - set(documented))]
    problems += [
        f"{what} {n} is documented twice" for n in sorted({n for n in documented if documented.count(n) > 1})
    ]
    return problems


def shown_default(value: Any) -> str | None:
    """How a table shows a default that is a plain value; None for those it describes in words."""
    if hasattr(value, "value"):
        value = value.value
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return '""'
    if value == []:
        return "[]"
    if isinstance(value, str | int):
        return str(value)
    return None


def defaults_problems(what: str, rows: list[list[str]], defaults: dict[str, Any]) -> list[str]:
    """A default cell that is one code span must show the default the code has."""
    problems = []
    for row in rows:
        names, shown = spans_in(row[0]), spans_in(row[1])
        for name in names:
            if name in defaults and len(shown) == 1 and row[1].strip() == f"`{shown[0]}`":
                expected = shown_default(defaults[name])
                if expected is not None and shown[0] != expected:
                    problems.append(f"{what} {name}: the docs say {shown[0]}, the code {expected}")
    return problems


def configuration_problems(pages: tuple[Page, ...]) -> list[str]:
    config = page(pages, "docs/configuration.md")
    problems = []
    for heading, model in (("Inbox fields", InboxConfig), ("Global parameters", GlobalConfig)):
        rows = config.table_rows(heading)
        documented = [n for row in rows for n in spans_in(row[0])]
        problems += both_ways(f"{heading}:", documented, set(model.model_fields))
        defaults = {n: f.default for n, f in model.model_fields.items() if not f.is_required()}
        problems += defaults_problems(heading, rows, defaults)

    parameters = template()["Parameters"]
    rows = config.table_rows("Template parameters")
    problems += both_ways("template parameter", [n for r in rows for n in spans_in(r[0])], set(parameters))
    problems += defaults_problems(
        "template parameter", rows, {n: p.get("Default", "") for n, p in parameters.items()}
    )

    outputs = template()["Outputs"]
    rows = config.table_rows("Stack outputs")
    problems += both_ways("stack output", [n for r in rows for n in spans_in(r[0])], set(outputs))
    for row in rows:
        [output], variable = spans_in(row[0]), spans_in(row[1])
        if OUTPUT_VARIABLES.get(output) != (variable[0] if variable else None):
            problems.append(
                f"stack output {output}: the CLI sets {OUTPUT_VARIABLES.get(output)}, not {variable}"
            )

    rows = config.table_rows("Environment variables")
    required = settings_names() | function_environment_names()
    problems += both_ways(
        "environment variable",
        [n for r in rows for n in spans_in(r[0])],
        required | {LOCAL_STACK_VARIABLE, "AWS_ENDPOINT_URL"},
    )
    return problems


def example_problems(pages: tuple[Page, ...]) -> list[str]:
    """Every inbox file the docs show is valid; every global parameter a command names exists."""
    problems = []
    for doc in pages:
        for language, body in doc.blocks:
            if language == "yaml" and re.search(r"^inbox_id:", body, re.MULTILINE):
                try:
                    validate_inbox(yaml.safe_load(body))
                except ConfigurationError as exc:
                    problems.append(f"{doc.name}: an inbox example is invalid: {exc}")
    for name, words in invocations(pages):
        chosen, _, _ = parse_invocation(words)
        if chosen in (("config", "set"), ("config", "get"), ("config", "unset")) and "--file" not in words:
            keys = [w for w in words[words.index(chosen[1]) + 1 :] if not w.startswith(("-", "["))]
            keys = keys[:1] if chosen[1] == "set" else keys
            problems += [
                f"{name}: no global parameter {k}"
                for k in keys
                if k not in GlobalConfig.model_fields and not k.rstrip("…").isupper()
            ]
    return problems


def template_name_problems(pages: tuple[Page, ...]) -> list[str]:
    """Parameters given, outputs read, `<stack>-…` names and CamelCase names must be the template's or the
    code's; in deploying.md, the template's."""
    tpl = template()
    parameters, outputs = set(tpl["Parameters"]), set(tpl["Outputs"])
    in_template = template_names(tpl) | set(tpl.get("Conditions", {}))
    in_template |= set(
        re.findall(r"\b[A-Z][A-Za-z0-9]+\b", (ROOT / "template.yaml").read_text(encoding="utf-8"))
    )
    in_code = set(re.findall(r"\b[A-Z][A-Za-z0-9]+\b", package_source())) | metric_names()
    suffixes = stack_suffixes()
    problems = []
    for doc in pages:
        known = in_template if doc.name == "docs/deploying.md" else in_template | in_code
        for code in doc.code():
            for name in re.findall(r"\b([A-Z][a-z]+(?:[A-Z][a-z0-9]*)*)=(?![=\"])", code):
                if name not in parameters:
                    problems.append(f"{doc.name}: {name}= sets no template parameter")
            for name in re.findall(r"stack_output (\w+)", code):
                if name not in outputs:
                    problems.append(f"{doc.name}: stack output {name} does not exist")
            for suffix in re.findall(r"<stack>-([a-z0-9-]+[a-z0-9])", code):
                if suffix not in suffixes:
                    problems.append(f"{doc.name}: the template names nothing <stack>-{suffix}")
        for span in doc.spans:
            if re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+", span) and span not in known | QUOTED_NAMES:
                problems.append(f"{doc.name}: `{span}` is nothing the template (or the code) names")
    deploying = page(pages, "docs/deploying.md")
    exported = dict(re.findall(r"(\w+)=\$\(stack_output (\w+)\)", "\n".join(deploying.code())))
    problems += [
        f"docs/deploying.md: the exports set {variable} from {exported.get(variable)}, not from {output}"
        for output, variable in OUTPUT_VARIABLES.items()
        if exported.get(variable) != output
    ]
    problems += [
        f"docs/deploying.md: `{line.strip()}` does not name its environment (--config-env)"
        for line in deploying.code()
        if re.search(r"\bsam deploy\b", line) and "--config-env" not in line
    ]
    return problems


def operations_problems(pages: tuple[Page, ...]) -> list[str]:
    """Every alarm is in the alarm table, and every log message quoted is one the code writes."""
    operations = page(pages, "docs/operations.md")
    alarms = {
        r["Properties"]["AlarmName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        for r in template()["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    documented = [
        span.removeprefix("<stack>-") for row in operations.table_rows("Alarms") for span in spans_in(row[0])
    ]
    problems = both_ways("alarm", documented, alarms)
    metrics = [name for row in operations.table_rows("Metrics") for name in spans_in(row[0])]
    problems += both_ways("metric", metrics, metric_names())
    source = package_source()
    for row in operations.table_rows("Logs"):
        for message in spans_in(row[0]):
            if f'"{message}"' not in source:
                problems.append(f"docs/operations.md: the code never logs {message!r}")
    return problems


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*]|\[([^]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def link_problems(pages: tuple[Page, ...]) -> list[str]:
    anchors = {
        doc.name: {
            slug(h)
            for h in re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", doc.text, flags=re.M | re.S), re.M)
        }
        for doc in pages
    }
    problems = []
    for doc in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            name = posixpath.normpath(posixpath.join(posixpath.dirname(doc.name), path)) if path else doc.name
            if path and not (ROOT / name).exists():
                problems.append(f"{doc.name}: link to {target}: no such file")
            elif anchor and anchor not in anchors.get(name, set()):
                problems.append(f"{doc.name}: link to {target}: no such heading")
    return problems


CHECKS = (
    make_problems,
    cli_problems,
    configuration_problems,
    example_problems,
    template_name_problems,
    operations_problems,
    link_problems,
)


# ------------------------------------------------------------------------------------------------ the tests


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_docs_and_the_code_name_the_same_things(check: Any) -> None:
    assert check(real_pages()) == []


def test_the_readme_is_a_front_door() -> None:
    readme = page(real_pages(), "README.md")
    assert len(readme.text.splitlines()) < README_MAX_LINES
    assert {Path(n).name for n in re.findall(r"\]\((docs/[\w-]+\.md)", readme.text)} == {
        p.name for p in (ROOT / "docs").glob("*.md")
    }


def _doctored(name: str, old: str, new: str) -> tuple[Page, ...]:
    pages = []
    for doc in real_pages():
        if doc.name == name:
            assert old in doc.text, old
            doc = Page(doc.name, doc.text.replace(old, new, 1))
        pages.append(doc)
    return tuple(pages)


@pytest.mark.parametrize(
    ("name", "old", "new", "check", "expected"),
    [
        ("README.md", "make demo", "make demon", make_problems, "`make demon` is no Makefile target"),
        ("docs/development.md", "`make clean`", "`clean`", make_problems, "`make clean` is not documented"),
        (
            "docs/operations.md",
            "mail2ticket dlq redrive [--max N]",
            "mail2ticket dlq redrive [--limit N]",
            cli_problems,
            "has no option --limit",
        ),
        (
            "docs/operations.md",
            "mail2ticket dlq redrive [--max N]",
            "mail2ticket dlq redrive",
            cli_problems,
            "`mail2ticket dlq redrive --max` is not documented",
        ),
        ("docs/deploying.md", "inbox enable support", "inbox activate support", cli_problems, "no command"),
        (
            "docs/configuration.md",
            "| `honor_ses_verdicts` | `true` |",
            "| `honour_ses_verdicts` | `true` |",
            configuration_problems,
            "honor_ses_verdicts is not documented",
        ),
        (
            "docs/configuration.md",
            "| `periodicity_seconds` | `60` |",
            "| `periodicity_seconds` | `30` |",
            configuration_problems,
            "the docs say 30, the code 60",
        ),
        (
            "docs/configuration.md",
            '| `SmtpHost` | `""` |',
            '| `SmtpRelay` | `""` |',
            configuration_problems,
            "template parameter SmtpRelay is documented but does not exist",
        ),
        (
            "docs/deploying.md",
            "PROCESS_DLQ_URL=$(stack_output ProcessDeadLetterQueueUrl) ",
            "",
            template_name_problems,
            "the exports set PROCESS_DLQ_URL",
        ),
        (
            "docs/deploying.md",
            "sam deploy --config-env dev                 # later",
            "sam deploy                 # later",
            template_name_problems,
            "does not name its environment",
        ),
        (
            "docs/deploying.md",
            "`PushRuleSetName=<the active set>`",
            "`PushRuleSet=<the active set>`",
            template_name_problems,
            "PushRuleSet= sets no template parameter",
        ),
        (
            "docs/deploying.md",
            "`RawMailBucket`",
            "`RawMailBuckets`",
            template_name_problems,
            "`RawMailBuckets` is nothing the template",
        ),
        (
            "docs/operations.md",
            "| `<stack>-mail-unrouted` |",
            "| `<stack>-mail-unrouteds` |",
            operations_problems,
            "alarm mail-unrouted is not documented",
        ),
        (
            "docs/configuration.md",
            "inbox_id: support-push\nprotocol: push\n",
            "inbox_id: support-push\nprotocol: push\nemail_storage: move\n",
            example_problems,
            "an inbox example is invalid",
        ),
        (
            "README.md",
            "(docs/deploying.md#8-upgrades-and-rollback)",
            "(docs/deploying.md#8-upgrades)",
            link_problems,
            "no such heading",
        ),
    ],
)
def test_a_doc_that_names_what_does_not_exist_or_leaves_out_what_does_is_caught(
    name: str, old: str, new: str, check: Any, expected: str
) -> None:
    # Given the docs with one mistake / When the check reads them / Then it names the mistake
    problems = check(_doctored(name, old, new))

    assert any(expected in p for p in problems), problems
