"""`mail2ticket people …` and `orgs …`: persons (callers, contacts, agents) and organizations."""

import argparse
import sys
from typing import Any

from mail2ticket.cli.common import CliError, Result, add_json, table, timestamp
from mail2ticket.cli.table import render, render_fields, to_json

PEOPLE_COLUMNS = ("email", "name", "org", "created")
ORG_COLUMNS = ("org_id", "name", "created")
TICKET_COLUMNS = ("ref", "title", "status", "role")


def add_people(commands: Any) -> None:
    group = commands.add_parser(
        "people",
        help="persons: callers, contacts and agents",
        description="Persons, by address (compared without case): the callers of tickets, their contacts, "
        "and the agents tickets are assigned to. Listing reads the whole tickets table.",
    )
    sub = group.add_subparsers(dest="people_command", required=True, metavar="ACTION")

    ls = sub.add_parser("ls", help="list persons", description="List the persons.")
    ls.add_argument("--org", metavar="ORG", help="only those of this organization (id or name)")
    add_json(ls)
    ls.set_defaults(run=_people_ls)

    show = sub.add_parser(
        "show",
        help="one person and their tickets",
        description="One person, and the tickets they called or are assigned.",
    )
    show.add_argument("email", metavar="EMAIL")
    add_json(show)
    show.set_defaults(run=_people_show)

    put = sub.add_parser(
        "put",
        help="create a person, or change their name or organization",
        description="Create a person, or change the fields given: --name, --org (an organization's id or "
        "unique name, which must exist). An empty value removes the field.",
    )
    put.add_argument("email", metavar="EMAIL")
    put.add_argument("--name", metavar="NAME")
    put.add_argument("--org", metavar="ORG")
    add_json(put)
    put.set_defaults(run=_people_put)

    delete = sub.add_parser(
        "delete",
        help="delete a person",
        description="Delete a person. Tickets keep their caller's and agent's address; a later mail from it "
        "is an unknown caller again.",
    )
    delete.add_argument("email", metavar="EMAIL")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=_people_delete)


def add_orgs(commands: Any) -> None:
    group = commands.add_parser(
        "orgs",
        help="organizations",
        description="Organizations: an id, and a name unique in any case. Callers' organizations are set "
        "with `people put --org`, or by an inbox's caller_default_values.",
    )
    sub = group.add_subparsers(dest="orgs_command", required=True, metavar="ACTION")

    ls = sub.add_parser("ls", help="list organizations", description="List the organizations.")
    add_json(ls)
    ls.set_defaults(run=_orgs_ls)

    show = sub.add_parser(
        "show", help="one organization and its people", description="One organization and its people."
    )
    show.add_argument("org", metavar="ORG", help="its id or name")
    add_json(show)
    show.set_defaults(run=_orgs_show)

    put = sub.add_parser(
        "put",
        help="create or rename an organization",
        description="Create an organization, or rename it. The name must be unique (any case, spaces "
        "collapsed) and must not be another organization's id.",
    )
    put.add_argument("org_id", metavar="ID", help="letters, digits, '_', '.', '-'")
    put.add_argument("--name", metavar="NAME", required=True)
    add_json(put)
    put.set_defaults(run=_orgs_put)


def _person(person: Any) -> dict[str, Any]:
    return {
        "email": person.email,
        "name": person.name,
        "org": person.org,
        "extra_values": dict(person.extra_values or {}),
        "created": timestamp(person.created_at),
    }


def _people_ls(args: argparse.Namespace) -> str:
    from mail2ticket.tickets.people import list_people

    return table([_person(p) for p in list_people(args.org)], PEOPLE_COLUMNS, args.json)


def _people_show(args: argparse.Namespace) -> str:
    from mail2ticket.tickets.people import get_person, tickets_of

    person = _person(get_person(args.email))
    tickets = [
        {
            "ref": t.ref,
            "title": t.title,
            "status": t.status,
            "role": "caller" if t.caller_email == person["email"] else "agent",
        }
        for t in tickets_of(args.email)
    ]
    if args.json:
        return to_json({**person, "tickets": tickets})
    return "\n".join(
        [
            render_fields(list(person.items())),
            "",
            f"Tickets ({len(tickets)})",
            render(tickets, TICKET_COLUMNS),
        ]
    )


def _people_put(args: argparse.Namespace) -> str:
    from mail2ticket.tickets.people import UNSET, put_person

    def given(value: str | None) -> Any:
        return UNSET if value is None else (value.strip() or None)

    saved = put_person(args.email, name=given(args.name), org=given(args.org))
    if args.json:
        return to_json({**_person(saved.person), "new": saved.created})
    return f"person {saved.person.email} {'created' if saved.created else 'saved'}"


def _people_delete(args: argparse.Namespace) -> Result:
    from mail2ticket.tickets.people import delete_person

    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("deleting a person needs confirmation: pass --yes")
        if input(f"Delete person {args.email}? [y/N] ").strip().lower() not in ("y", "yes"):
            return Result("nothing deleted", 1)
    delete_person(args.email)
    return Result(f"person {args.email.strip().lower()} deleted")


def _org(org: Any) -> dict[str, Any]:
    return {"org_id": org.org_id, "name": org.name, "created": timestamp(org.created_at)}


def _orgs_ls(args: argparse.Namespace) -> str:
    from mail2ticket.tickets.people import list_organizations

    return table([_org(o) for o in list_organizations()], ORG_COLUMNS, args.json)


def _orgs_show(args: argparse.Namespace) -> str:
    from mail2ticket.tickets.people import get_organization, list_people

    org = get_organization(args.org)
    people = [_person(p) for p in list_people(org.org_id)]
    if args.json:
        return to_json({**_org(org), "people": people})
    fields = render_fields(list(_org(org).items()))
    return "\n".join([fields, "", f"People ({len(people)})", render(people, ("email", "name"))])


def _orgs_put(args: argparse.Namespace) -> str:
    from mail2ticket.tickets.people import put_organization

    org = put_organization(args.org_id, args.name)
    return to_json(_org(org)) if args.json else f"organization {org.org_id} is named {org.name!r}"
