"""Sub-commands: init, card export|show, identity export-age|change-passphrase,
partner import|list|verify|revoke."""

from __future__ import annotations

import argparse
import json

from agreements import (
    ORG_KINDS,
    IdentityError,
    create_identity,
    export_age_identity,
    export_card,
    import_card,
    list_partners,
    our_card,
    revoke_partner,
    verify_partner,
)
from desktop.cli import say
from desktop.commands._vaultargs import (
    NEW_PASSPHRASE_ENV,
    add_force,
    open_or_create_vault,
    open_vault,
    read_passphrase,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    p = sub.add_parser("init", help="create the vault (if needed) and this organization's identity")
    p.add_argument("--org", required=True, help="the organization's name, as partners know it")
    p.add_argument("--kind", required=True, choices=ORG_KINDS)
    p.add_argument("--contact", default="", help="who partners contact (e-mail or phone)")
    p.set_defaults(func=cmd_init)

    card = sub.add_parser("card", help="this organization's public card")
    card_sub = card.add_subparsers(dest="card_command", metavar="ACTION", required=True)
    p = card_sub.add_parser("export", help="write the public card (JSON) for partners")
    p.add_argument("out", metavar="OUT.json")
    add_force(p)
    p.set_defaults(func=cmd_card_export)
    p = card_sub.add_parser("show", help="print the card and its fingerprint")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_card_show)

    ident = sub.add_parser("identity", help="the organization's secret keys")
    ident_sub = ident.add_subparsers(dest="identity_command", metavar="ACTION", required=True)
    p = ident_sub.add_parser("export-age", help="write the age identity file (0600) for the age CLI")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--yes", action="store_true", help="confirm writing the secret key to a file")
    p.set_defaults(func=cmd_export_age)
    p = ident_sub.add_parser(
        "change-passphrase", help=f"re-encrypt the vault under a new passphrase (from {NEW_PASSPHRASE_ENV})"
    )
    p.set_defaults(func=cmd_change_passphrase)

    partner = sub.add_parser("partner", help="partner organizations' cards")
    psub = partner.add_subparsers(dest="partner_command", metavar="ACTION", required=True)
    p = psub.add_parser("import", help="import a partner's card")
    p.add_argument("card", metavar="CARD.json")
    p.add_argument("--verified", action="store_true", help="the fingerprint was already confirmed with them")
    p.set_defaults(func=cmd_partner_import)
    p = psub.add_parser("list", help="list partners")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_partner_list)
    p = psub.add_parser("verify", help="mark a partner verified after comparing fingerprints out of band")
    p.add_argument("fingerprint", metavar="FINGERPRINT")
    p.set_defaults(func=cmd_partner_verify)
    p = psub.add_parser("revoke", help="revoke a partner's card")
    p.add_argument("fingerprint", metavar="FINGERPRINT")
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_partner_revoke)


def cmd_init(args: argparse.Namespace) -> int:
    from agreements import check_identity_inputs

    check_identity_inputs(args.org, args.kind, args.contact)  # before a vault is made for nothing
    vault, created = open_or_create_vault(args, (args.org, args.contact))
    with vault:
        card = create_identity(vault, args.org, args.kind, args.contact)
    where = "Created the vault" if created else "Using the vault"
    print(f"{where} at {vault.path}.")
    print(f"Organization: {card.org} ({card.kind})")
    print(f"Fingerprint:  {card.fingerprint()}")
    print("Next: `pathshare card export CARD.json` and send the card to your partners.")
    return 0


def cmd_card_export(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        card = export_card(vault, args.out, force=args.force)
    print(f"Wrote the card of {card.org} to {args.out}.")
    print(f"Fingerprint: {card.fingerprint()}  (read it to partners when they verify your card)")
    return 0


def cmd_card_show(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        card = our_card(vault)
    if args.json:
        print(json.dumps({**card.to_dict(), "fingerprint": card.fingerprint()}, indent=2, ensure_ascii=False))
    else:
        print(f"{card.org} ({card.kind}){'  ' + card.contact if card.contact else ''}")
        print(f"Fingerprint:   {card.fingerprint()}")
        print(f"Age recipient: {card.age_recipient}")
        print(f"Created:       {card.created}")
    return 0


def cmd_export_age(args: argparse.Namespace) -> int:
    if not args.yes:
        raise IdentityError(
            f"This writes the organization's secret decryption key to {args.out}; add --yes to confirm."
        )
    with open_vault(args) as vault:
        export_age_identity(vault, args.out)
    print(f"Wrote the age identity to {args.out} (readable only by you). Keep it as safe as the vault.")
    return 0


def cmd_change_passphrase(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        new = read_passphrase("New vault passphrase: ", env=NEW_PASSPHRASE_ENV, confirm=True)
        vault.change_passphrase(new)
    print(f"The vault at {vault.path} now opens with the new passphrase.")
    return 0


def cmd_partner_import(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        result = import_card(vault, args.card, verified=args.verified)
    if result.key_changed:
        say(result.message, result.hint)
    else:
        print(result.message)
        if result.hint:
            print(f"hint: {result.hint}")  # what to do next, on its own line as in a refusal
    return 0


def cmd_partner_list(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        partners = list_partners(vault)
    if args.json:
        print(json.dumps([p.to_dict() for p in partners], indent=2, ensure_ascii=False))
        return 0
    if not partners:
        print("No partners yet; import a card with `pathshare partner import CARD.json`.")
        return 0
    width = max(len(p.org) for p in partners)
    for p in partners:
        print(f"{p.fingerprint}  {p.status:<10}  {p.org:<{width}}  {p.card.kind}")
    return 0


def cmd_partner_verify(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        partner = verify_partner(vault, args.fingerprint)
    print(f"{partner.org} ({partner.fingerprint}) is verified.")
    return 0


def cmd_partner_revoke(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        partner = revoke_partner(vault, args.fingerprint, args.reason)
    print(f"{partner.org} ({partner.fingerprint}) is revoked.")
    return 0
