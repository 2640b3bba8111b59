"""RE2 patterns of the free-text scanner's detectors: phones, e-mail, identifiers with context, dates of
birth, street addresses and the context rules for names.

Everything here is RE2 syntax (no look-around, no back-references) because the scanner runs them over
whole columns through pyarrow. The scanner's combined pattern is built from two sorts of alternatives:

- *plain* candidates, which are the PII themselves ("415-555-0142x204", "12 Main St, Apt 4");
- *context pairs* ``(context)(value)``: the value only counts after its context ("call me at
  555-0142", "driver's license number is D1234567", "spoke with ximena"). The context stays in the
  text, only the value is replaced; the scanner tells the context kinds apart by matching the text
  just before the value against the anchored context patterns below.

Sources of the word lists: street suffixes and secondary unit designators from USPS Publication 28
(appendices C1 and C2; a US government work); state codes from USPS as well.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# --- the Latin fast path ------------------------------------------------------------------------

# RE2 builds its DFA over UTF-8 bytes: a Unicode class such as \p{L} is hundreds of byte ranges, and
# the scanner's patterns, full of them, make the DFA outgrow its memory budget, so RE2 falls back to its
# much slower NFA (10-20x per note). Text whose characters all lie in the Latin blocks and the general
# punctuation (almost every note written in English, Spanish, Vietnamese, Tagalog, …) is searched with
# the same patterns whose classes are cut down to those blocks: for such text they match exactly the
# same. Other text (Cyrillic, Chinese, Arabic, emoji, …) is searched with the full patterns.
LATIN_BLOCKS = ((0x0000, 0x024F), (0x1E00, 0x1EFF), (0x2000, 0x206F))
#: a character outside those blocks (a cell holding one takes the full patterns)
NOT_LATIN = "[^" + "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in LATIN_BLOCKS) + "]"
_UNICODE_CLASS = re.compile(r"\\p\{(\w+)\}")


@functools.lru_cache(maxsize=16)
def _latin_class(category: str) -> str:
    """The ranges (RE2 syntax, no brackets) of the characters of a Unicode category in the Latin blocks."""
    runs: list[list[int]] = []
    for lo, hi in LATIN_BLOCKS:
        for cp in range(lo, hi + 1):
            if unicodedata.category(chr(cp)).startswith(category):
                if runs and runs[-1][1] == cp - 1:
                    runs[-1][1] = cp
                else:
                    runs.append([cp, cp])
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in runs)


@functools.lru_cache(maxsize=256)
def latin(pattern: str) -> str:
    """``pattern`` with every ``\\p{…}`` class cut down to the Latin blocks (see above)."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            m = _UNICODE_CLASS.match(pattern, i)
            if m:
                ranges = _latin_class(m.group(1))
                out.append(ranges if in_class else f"[{ranges}]")
                i = m.end()
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


# --- shared pieces ------------------------------------------------------------------------------

#: a capitalized word (cheaper to compile than NAME_WORD, for the address patterns' repetitions)
CAP_WORD = r"\p{Lu}[\p{L}\p{M}'’\-]*"
#: a name-like word: capitalized, with accents, inner apostrophes and hyphens ("O'Brien", "García-López")
NAME_WORD = r"\p{Lu}[\p{L}\p{M}]*(?:['’\-]\p{L}[\p{L}\p{M}]*)*"
# any-case word (context rules accept names written in lower case or capitals)
_ANY_WORD = r"\p{L}[\p{L}\p{M}'’\-]*"

_MONTH = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = r"(?:[0-3]?\d)(?i:st|nd|rd|th)?"
#: a date in every common written form: 3/14/2009, 03-14-09, 14.03.2009, 2009-03-14, 2009/03/14,
#: March 14, 2009, Mar. 14th 2009, 14 March 2009, 14th of March, 2009
DATE = (
    r"(?:\d{1,2}[/\-.]\d{1,2}[/\-.]\d{2,4}|\d{4}[/\-.]\d{1,2}[/\-.]\d{1,2}|"
    + _MONTH + r"\.? " + _DAY + r",? \d{4}|"
    + _DAY + r"(?: of)? " + _MONTH + r"\.?,? \d{4})"
)  # fmt: skip

# --- e-mail -------------------------------------------------------------------------------------

# Any Unicode letter or digit in the local part and the domain (IDN: "müller@bücher.de", "josé@ejemplo.mx");
# the whole address is one candidate, so nothing before an accent is left behind.
_LOCAL = r"[\p{L}\p{N}\p{M}](?:[\p{L}\p{N}\p{M}._%+\-'’]*[\p{L}\p{N}\p{M}_%+\-])?"
_LABEL = r"[\p{L}\p{N}](?:[\p{L}\p{N}\p{M}\-]*[\p{L}\p{N}\p{M}])?"
EMAIL = _LOCAL + "@" + _LABEL + r"(?:\." + _LABEL + r")*\.(?:xn--[a-z0-9\-]+|\p{L}\p{L}+)"

# --- phones -------------------------------------------------------------------------------------

# extensions: x123, ext. 123, ext 12, extension 12, #123
_EXT = r"(?:\s?(?:[xX]|[eE][xX][tT](?:ension)?\.?|#)\s?\d{1,6})?"
#: NANP in every written form: (415) 555-0142, (415)555-0142x0135, 415.555.0142x459, +1-415-555-0142x31
NANP = r"(?:\+1[ .\-]?|1[ .\-])?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}" + _EXT + r"\b"
#: international with "+": +44 20 7946 0958, +52 55 1234 5678, +49 (0)30 901820
INTL_PHONE = r"\+[1-9]\d{0,2}(?:[ .\-]?\(?\d{1,5}\)?){2,6}" + _EXT
#: national numbers written in groups: 020 7946 0958, (96) 627-277, 0490 75 40 81, 71-33-52-22
GROUPED_PHONE = (
    r"(?:\(\d{1,4}\)[ .\-]?\d{2,5}(?:[ .\-]\d{2,5}){0,3}|0\d{1,4}(?:[ .\-]\d{2,8}){1,4}|"
    r"\d{2,5}(?:[ .\-]\d{2,5}){2,4}|[2-9]\d\d[ .\-]\d{4}|\d{2,4} \d{6,8})" + _EXT + r"\b"
)
#: after a phone context word, any run of 7 to 15 digits in groups ("call me at 555-0142")
PHONE_WORD = (
    r"(?i:\b(?:call(?:ed|ing)?|text(?:ed)?|phone|ph|tel|telephone|cell(?:phone)?|mobile|fax|"
    r"contact(?:ed)?|reach(?:ed)?|dial(?:ed)?|whatsapp|voicemail)\b)"
)
PHONE_CONTEXT = (
    PHONE_WORD + r"(?:[a-z :,'#()/.\-\n]|\b(?:Tel|Ph|No|Phone|Cell|Mobile|Fax|Number|Home|Work)\b){0,24}?"
)
PHONE_VALUE = r"\+?\(?\d[\d ().\-]{5,20}\d" + _EXT + r"\b"

# --- identifiers with context -------------------------------------------------------------------

ID_WORDS = (
    r"(?:(?i:(?:driver'?s?|drivers|driving)[ \-]?licen[cs]e|\bDL|\bCDL|passport|"
    r"(?:bank |checking |savings )?account|\bacct|routing|\bABA|\bRTN|"
    r"(?:student|employee|staff|member|badge|customer|patient|case|record|district|state|local|"
    r"ssid|perm|permanent|school|national|tax|medicaid|medi-cal|insurance|policy)[ \-]?(?:id|identifier)|"
    r"identification|\bssid|\bperm|licen[cs]e|\btax id|\bTIN|zip|zip ?code|postal code|postcode)|\bI[Dd]\b)"
)
#: the context words of an identifier, then "number/no./#" and "is/:" in any order
ID_CONTEXT = (
    ID_WORDS + r"(?:\s?(?i:number|num|no\.?|nbr|#|code)){0,2}"
    r"(?:\s?(?i:is\b|was\b|of\b|:|=|#|-))*\s?#?\s?"
)
ID_VALUE = r"(?:[A-Za-z]{1,4}[\- ]?)?\d[A-Za-z0-9]*(?:[\- ][A-Za-z0-9]*\d[A-Za-z0-9]*){0,3}"
#: which identifier a context names (tried on the text just before the value, in this order)
ID_KIND_CONTEXTS: tuple[tuple[str, str], ...] = (
    ("DRIVER_LICENSE", r"(?i:licen[cs]e|\bc?dl\b)"),
    ("PASSPORT", r"(?i:passport)"),
    ("BANK_ACCOUNT", r"(?i:account|acct|routing|\baba\b|\brtn\b)"),
    ("ADDRESS", r"(?i:zip|postal|postcode)"),  # a ZIP or postal code
)

#: IBAN in any case and spacing: DE89 3704 0044 0532 0130 00, gb82west12345698765432
IBAN = r"\b[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]{4}){2,7}(?:[ \-]?[A-Za-z0-9]{1,4})?\b"

#: date of birth after its context: "DOB: 3/14/2009", "born on March 14, 2009", "birthday 14th of March, 2009"
DOB_WORD = r"(?i:\bDOB|D\.O\.B\.?|birth ?date|date of birth|birthday|\bborn(?: on| in)?|\bb\. ?)"
DOB = DOB_WORD + r"(?:[:\s]|(?i:is|was|on)\s){0,4}" + DATE

# --- street addresses ---------------------------------------------------------------------------

# USPS Publication 28, appendix C1: street suffixes and their standard abbreviations
_SUFFIXES = """
allee alley ally aly anex annex anx arcade arc avenue ave av bayou byu beach bch bend bnd bluff blf
bluffs blfs bottom btm boulevard blvd branch br bridge brg brook brk brooks burg bg burgs bypass byp
camp cp canyon cyn cape cpe causeway cswy center ctr centers circle cir circles cirs cliff clf
cliffs clfs club clb common cmn commons corner cor corners cors course crse court ct courts cts cove
cv coves creek crk crescent cres crest crst crossing xing crossroad xrd curve curv dale dl dam dm
divide dv drive dr drives drs estate est estates ests expressway expy extension ext falls fls ferry
fry field fld fields flds flat flt flats flts ford frd forest frst forge frg fork frk forks frks
fort ft freeway fwy garden gdn gardens gdns gateway gtwy glen gln glens green grn grove grv groves
grvs harbor hbr harbors haven hvn heights hts highway hwy hill hl hills hls hollow holw inlet inlt
island is islands iss isle junction jct key ky keys kys knoll knl knolls knls lake lk lakes lks
landing lndg lane ln light lgt lights lgts loaf lf lock lck locks lcks lodge ldg loop mall manor mnr
manors mnrs meadow mdw meadows mdws mews mill ml mills mls mission msn motorway mtwy mount mt
mountain mtn mountains mtns neck nck orchard orch oval overpass opas park parks parkway pkwy
parkways pass passage psge path pike pine pne pines pnes place pl plain pln plains plns plaza plz
point pt points pts port prt ports prts prairie pr radial radl ramp ranch rnch rapid rpd rapids rpds
rest rst ridge rdg ridges rdgs river riv road rd roads rds route rte row rue run shoal shl shoals
shls shore shr shores shrs skyway skwy spring spg springs spgs spur spurs square sq squares sqs
station sta stravenue stra stream strm street st streets sts summit smt terrace ter throughway trwy
trace trce track trak trafficway trfy trail trl trailer trlr tunnel tunl turnpike tpke underpass
upas union un unions uns valley vly valleys vlys via viaduct vdct view vw views vws village vlg
villages vlgs ville vl vista vis walk walks wall way wy ways well wl wells wls
close rise parade quay wharf chase wynd gate str
""".split()  # noqa: SIM905
_SUFFIX = r"(?i:" + "|".join(sorted(set(_SUFFIXES), key=lambda s: (-len(s), s))) + r")(?:\.|\b)"
_DIRECTION = r"(?:[NSEW]\.?|[NS][EW]\.?|(?i:north|south|east|west|northeast|northwest|southeast|southwest))"
# USPS Publication 28, appendix C2: secondary unit designators ("#" as written)
_UNIT_WORD = (
    r"(?i:apartment|apt|suite|ste|unit|room|rm|floor|fl|building|bldg|department|dept|space|spc|lot|"
    r"trailer|trlr|hangar|hngr|pier|slip|stop|box|lobby|lbby|office|ofc|penthouse|ph|basement|bsmt|rear|front)"
)
_UNIT = r"(?:" + _UNIT_WORD + r"\.?\s?#?\s?|#\s?)[A-Za-z]?\d+[A-Za-z]?(?:-\d+)?"
_STATES = """
AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY
NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI AA AE AP
""".split()  # noqa: SIM905
_STATE = r"(?:" + "|".join(_STATES) + r")"
_STREET_NAME = r"(?:" + CAP_WORD + r"|\d{1,3}(?i:st|nd|rd|th)|[A-Z]\.?)"
_WORD = r"\p{L}[\p{L}\p{M}.'’\-]*"
_PARTICLE = (
    r"(?:de|da|do|dos|das|del|della|la|le|les|van|von|der|den|di|du|el|al|ul\.|u\.|y|e|nad|na|pod|am|an|im|bei|"
    r"upon|on)"
)
# the house number, possibly two ("6400 12 Timms Drive", "12-14", "221B")
_HOUSE = r"\b\d{1,6}[A-Za-z]?(?:-\d{1,5})?(?: \d{1,5}[A-Za-z]?)?,? "
#: the city/state/ZIP line that may follow: ", Springfield, IL 62704", "\nGRASSE, PA 39551"
CITY_LINE = (
    r"(?:,?[ \t]*\n?[ \t]*" + CAP_WORD + r"(?: " + CAP_WORD + r"){0,3}"
    r",?[ \t]*\n?[ \t]*,?[ \t]*" + _STATE + r"\.?[ \t]*\n?[ \t]*\d{5}(?:-\d{4})?)"
)
# what follows a street line, each after a comma or a line break: units, towns, regions, countries,
# postal codes ("\n Apt. 236\n Ribeirão\n Portugal 30971", ", Springfield, IL 62704")
_TAIL_CHUNK = (
    r"(?:"
    + _UNIT
    + r"|\p{Lu}[\p{L}\p{M}'’.\-]+(?: (?:\(?\p{Lu}[\p{L}\p{M}'’.\-]*\)?|"
    + _PARTICLE
    + r")){0,3}(?:,? "
    + _STATE
    + r")?(?:,? \d{4,6}(?:-\d{3,4})?)?|"
    + _STATE
    + r"(?: \d{4,6})?|\d{4,6}(?:-\d{3,4})?"
    # a short lower-case region code before a postal code ("ca 94110", "mp 35739")
    + r"|\p{Ll}{1,3}(?:,? |(?:[ \t]*[,\n]){1,2}[ \t]*)\d{4,6})"
)
# (chunks after commas or line breaks, blank lines and "> " quoting included; a unit, or a town in capitals,
# after a space: "Suite 215 NUNGATTA Australia")
ADDRESS_TAIL = (
    r"(?:(?:[ \t]*[,\n>]){1,3}[ \t>?]*" + _TAIL_CHUNK + r"|[ \t]+" + _UNIT + r"(?:[ \t,]+" + _UNIT + r")*"
    # (a town after a unit: "Suite 274 Ljubljana", "Apt. 085 BODØ"; units first: "Suite 568 Apt. 108")
    + r"(?: \p{Lu}[\p{L}\p{M}'’.\-]*(?: \p{Lu}[\p{L}\p{M}'’.\-]*){0,2}(?: \p{Ll}{1,3}\b)?)?"
    + r"|[ \t]+\p{Lu}{2}[\p{Lu}'’.\-]*(?: \p{Lu}[\p{L}\p{M}'’.\-]*){0,2}){0,5}"
)  # fmt: skip
_US_LINE = (
    _HOUSE
    + r"(?:"
    + _DIRECTION
    + r" )?(?:"
    + _STREET_NAME
    + r" ){0,4}"
    + _STREET_NAME
    + r" "
    + _SUFFIX
    + r"(?: "
    + _DIRECTION
    + r"\b)?"
)
# street words written in lower case inside a street name ("Erzsébet tér 19", "Piroska u. 97")
_STREET_WORD_LOWER = (
    r"(?:u\.|út|utca|tér|rkp\.|krt\.|körút|terrasse|gasse|straße|strasse|str\.|ul\.|ulica|vej|gade|gata|"
    r"gatan|vägen|väg|katu|tie|tee|iela|cesta|allé|alle|rue|via|calle|rua|vei|veien|weg|laan|straat)"
)
_INTL_PREFIX = (
    r"(?i:rua|calle|c/|avenida|av\.|avda\.?|via|viale|rue|carrer|travessa|praça|paseo|camino|calzada|"
    r"ulica|ul\.|utca|strada|str\.|bulevar|bd\.?|chaussée|avenue|boulevard|chemin|allée|quai|impasse|route)"
)
# a street named beside another ("Maarit and Hersnapvej 75", "Leon and Eyrarodda 66" — a corner
# written without "the corner of")
_BESIDE = r"(?:\b\p{Lu}[\p{L}\p{M}'’\-]* (?:and|&) )?"
INTL_LINE = (
    r"(?:" + _BESIDE + r"(?:" + _HOUSE + r")?\b" + _INTL_PREFIX + r" (?:" + _WORD + r" ){0,4}" + _WORD
    + r",? \d{1,5}[A-Za-z]?\b"
    # house number first, then the street word ("636 1812 Rue De La Gare", "010 63 Avenue du Golf Arabe")
    + r"|" + _HOUSE + r"\b" + _INTL_PREFIX + r"(?: " + _WORD + r"){1,4}"
    + r"|" + _BESIDE + r"(?:" + _HOUSE + r")?\b\p{Lu}[\p{L}\p{M}]*(?i:gatan|gata|vägen|väg|katu|kuja|tie|"
    r"straße|strasse|stræti|weg|laan|straat|gade|vej|veien|vegen|gasse|platz|plein|allee|steenweg|utca|ulica|cesta|"
    r"iela|gatve|tér|út|útja) \d{1,5}[A-Za-z]?\b"
    # number, street name, number ("25615 Tawastintie 72", "233 Erzsébet tér 19", "6076 Piroska u. 97"):
    # the name written as a name, not "MATH 110"
    + r"|\b\d{1,6}[A-Za-z]?(?: \d{1,5})? \p{Lu}\p{Ll}[\p{L}\p{M}'’\-]*(?: (?:" + CAP_WORD + r"|" + _PARTICLE
    + r"|" + _STREET_WORD_LOWER + r")){0,3},? \d{1,5}[A-Za-z]?\b\.?"
    # name, number, name and street suffix ("Storgarden 52 Trajanka Forks")
    + r"|\b\p{Lu}\p{Ll}[\p{L}\p{M}'’\-]* \d{1,5} (?:" + _STREET_NAME + r" ){0,3}" + _SUFFIX + r"\b"
    # "the corner of X and Y": the whole phrase
    + r"|(?i:\b(?:the )?(?:corner|intersection) of )" + r"(?:\d{1,5} )?[\p{L}\d][\p{L}\p{M}\d.'’\-]*"
    + r"(?: [\p{L}\d][\p{L}\p{M}\d.'’\-]*){0,3},? (?:and|&) (?:\d{1,5} )?[\p{L}\d][\p{L}\p{M}\d.'’\-]*"
    + r"(?: [\p{L}\d][\p{L}\p{M}\d.'’\-]*){0,3})"
)  # fmt: skip
#: post office boxes and military mail: "P.O. Box 123", "PSC 5420, Box 2708 APO AA 33879",
#: "USNS Saibara FPO AP 12428"
PO_BOX = (
    r"(?:(?:" + _HOUSE + r")?\b(?i:p\.? ?o\.? ?box|post office box|(?:psc|unit|cmr) \d{1,5},? ?\n?[ \t]*box)"
    r" ?#? ?"
    r"\d{1,6}(?: (?:" + _STREET_NAME + r" ){0,3}" + _SUFFIX + r")?"
    r"|\b(?:USNS|USNV|USS|USCGC) " + CAP_WORD + r")"
    r"(?:,?[ \t]*\n?[ \t]*(?i:apo|fpo|dpo) (?i:aa|ae|ap) \d{5})?"
    r"|\b(?i:apo|fpo|dpo) (?i:aa|ae|ap) \d{5}\b"
)  # fmt: skip
# a street named without a house number, when a city, state and ZIP code follow it ("Elm Street,
# Springfield, IL 62704"); alone ("ran 3 miles on Main Street") it is no address line
_NAMED_LINE = r"\b(?:" + _STREET_NAME + r" ){0,3}" + CAP_WORD + r" " + _SUFFIX + CITY_LINE
#: a street line (US, international, PO box or military) with what follows it
STREET = r"(?:" + _US_LINE + "|" + INTL_LINE + "|" + PO_BOX + "|" + _NAMED_LINE + ")" + ADDRESS_TAIL
#: what every street line above starts with or holds (a necessary condition, cheap to search): a house
#: number before a capital, a digit or a directional; an international street word; a box or military mail
STREET_TRIGGER = (
    r"\d[A-Za-z]?,? (?:[\p{Lu}\d]|(?i:north|south|east|west))|\b" + _INTL_PREFIX + " "
    + r"|(?i:gatan|gata|vägen|väg|katu|kuja|tie|straße|strasse|stræti|weg|laan|straat|gade|vej|veien|vegen|"
    r"gasse|platz|plein|allee|steenweg|utca|ulica|cesta|iela|gatve|tér|út|útja) \d"
    r"|(?i:box|post office|corner of|intersection of)|\bUS(?:NS|NV|S|CGC) |(?i:[adf]po) (?i:a[aep]) \d"
    r"|\b[A-Z]{2}\.?[ \t]*\n?[ \t]*\d{5}\b"  # (a state and a ZIP code: a named street's city line)
)  # fmt: skip
#: an apartment, suite or unit written alone: "Apt. 026", "Suite 377"
UNIT_ALONE = r"\b(?i:apartment|apt|suite|ste|unit)\.? ?#? ?\d{1,5}[A-Za-z]?\b"
#: what an address context introduces: "the corner of X and Y", "lives at 12 Elm", "zip code 94110"
ADDRESS_CONTEXT = (
    r"(?i:\b(?:corner of|intersection of)\s)|"
    r"(?i:\b(?:lives?|living|moved|moving|resides?|residing|located|staying|address(?: is)?|"
    r"address:|home is|house is|apartment is)\s(?:at|on|in|is|to)?\s?(?:the )?)"
)
_SIDE_WORD = r"[\p{L}\d][\p{L}\p{M}\d.'’\-]*"
_SIDE = r"(?:\d{1,5} )?" + _SIDE_WORD + r"(?: " + _SIDE_WORD + r"){0,3}"
ADDRESS_VALUE = (
    r"(?:" + _SIDE + r",? (?:and|&) " + _SIDE
    + r"|" + CAP_WORD + r"(?: (?:" + CAP_WORD + r"|" + _PARTICLE + r")){0,3},? \d{1,5}[A-Za-z]?"
    + r"(?:, " + CAP_WORD + r"){0,2}"
    + r")"
)  # fmt: skip

# --- names --------------------------------------------------------------------------------------

_RELATION = (
    r"mom|mother|mum|dad|father|guardian|grandma|grandmother|grandpa|grandfather|abuela|abuelo|aunt|"
    r"uncle|tia|tío|tio|stepmom|stepdad|stepmother|stepfather|parent|parents|foster parent|caregiver|"
    r"sister|brother|cousin|sibling|case ?worker|social worker|caseworker|advocate|probation officer"
)
#: verbs said of people, after a name at the start of a sentence ("Mehrudin shouted", "Asya spent a
#: year"); "is", "was" and "has" are left out: they are said of things as often
PERSON_VERBS = (
    r"said|says|shouted|yelled|cried|laughed|smiled|replied|answered|asked|told|tells|spent|spends|"
    r"lives|lived|began|begins|wrote|writes|thinks|thought|feels|felt|wants|wanted|loves|loved|likes|"
    r"liked|hates|hated|went|goes|came|comes|arrived|left|moved|works|worked|studies|studied|plays|"
    r"played|sings|sang|walked|ran|married|died|grew up|met|called|emailed|texted|visited|stayed|"
    r"seems|seemed|looks|looked|needs|needed|admitted|explained|agreed|refused|decided|struggles|"
    r"struggled|missed|attends|attended|joined|graduated|transferred|enrolled|will be|would like"
)
#: the context that introduces a name (the name, in any case, follows)
NAME_CONTEXT = (
    r"(?i:\b(?:my|his|her|their|the student's|student's|child's)?\s?(?:full |first |last |legal |preferred )?"
    r"name(?: is|:| -|\?)[ \t]{0,8}\n?[ \t]{0,8}|\bnamed\s|\b(?:call|calls|called) me\s|\bi am\s|\bi'm\s|"
    r"\bthis is\s|"
    # a greeting at the start of a line ("Hi Manlio,"), a relative or friend after "my/his/her"
    r"(?m:^)[ \t]*(?:hi|hello|hey|hiya|good morning|good afternoon)[ \t]+|"
    r"\b(?:my|his|her|their|your|our) (?:son|daughter|kid|child|husband|wife|friend|best friend|"
    r"boyfriend|girlfriend|partner|" + _RELATION + r") )|"
    r"(?i:\b(?:spoke|speak|speaking|talked|talk|talking|met|meet|meeting|conferenced|conferred|consulted|"
    r"checked in|check in|worked|working|chatted|connected|follow(?:ed)? up) with\s(?:(?:both |parents? )?)|"
    r"\b(?:spoke|talked|wrote|written|referred|introduced|sent|gave|reached out|reaching out|passed) to\s|"
    r"\b(?:called|emailed|e-mailed|texted|phoned|contacted|messaged|visited|thanked|reminded|notified|"
    r"informed|cc'?d|cc:|paged|referred|introduced)\s|"
    r"\bleft (?:a )?(?:voice ?mail|message|vm|msg|note)s? (?:for|with|to)\s|\b(?:dear|attn:?|attention:?|to:|"
    r"from:|cc:|signed:?|by:)\s?|"
    r"\b(?:" + _RELATION + r")\s?(?:\(|:|-|is\b|was\b|named\b)\s?|"
    r"\b(?:sincerely|regards|best regards|kind regards|warm regards|thanks|thank you|cheers|respectfully|"
    r"best wishes|yours truly)[,.!]?[ \t]*\n?[ \t]*(?:--?\s?)?)"
)
#: contexts after which a given name in lower case is still a name ("my name is john", "Name: will")
STRONG_NAME_CONTEXT = (
    r"(?i:name(?: is|:| -|\?)[ \t]{0,8}\n?[ \t]{0,8}|\bnamed\s|\b(?:call|calls|called) me\s|"
    r"\b(?:dear|attn:?|signed:?)\s?)$"
)
#: a list of three or more single words in lower case ("silvana, adam, christopher and caleb"): names
#: when most of them are listed given names that are no English words (judged after the search)
_LOW_ITEM = r"\p{Ll}[\p{Ll}\p{M}'’\-]{2,}"
LOWER_LIST = _LOW_ITEM + r"(?:, " + _LOW_ITEM + r"){2,}(?:,? (?:and|&) " + _LOW_ITEM + r")?\b"
LOWER_LIST_TRIGGER = r"\p{Ll}{3}, \p{Ll}{3}[\p{Ll}\p{M}'’\-]*, \p{Ll}{3}"
#: the value of a name context: one to three words (middle initials allowed), any case
# (a number after the words is taken too, so that "sent to Magasinsgatan 7" can be judged an address)
# Capitalized words run on ("Maria Elena Lopez", "Mom Maria"); lower-case ones at most two, so that a
# capitalized name after them ("met with her and Maria") stays a candidate of its own.
_LOW_WORD = r"\p{Ll}[\p{L}\p{M}'’\-]*"
# The value ends where a word ends (a space, punctuation, the end): "emailed from nou.lor32@…" must not
# take "from nou" and leave the rest of the address behind.
_WORD_END = r"(?:[ \t\n,;:!?)\]\"'”’]|\.(?:\s|$)|$)"
NAME_VALUE = (
    r"(?:"
    + CAP_WORD
    + r"(?: (?:\p{Lu}\.|"
    + CAP_WORD
    + r")){0,2}(?: \d{1,5}[A-Za-z]?)?|"
    + _LOW_WORD
    + r"(?: "
    + _LOW_WORD
    + r")?)"
    + _WORD_END
)
#: titles and roles before a name: "Mr. Smith", "ms. wijtze", "Coach Rivera", "Principal Okafor"
_HONORIFIC = r"\b(?i:mr|mrs|ms|miss|mx|dr|prof|sr|sra|srta)\.? "
_ROLE = (
    r"\b(?:Coach|Principal|Counselor|Counsellor|"
    r"Officer|Deputy|Detective|Det\.|Sgt\.?|Sergeant|Pastor|Rev\.?|Reverend|Father|Sister|Nurse|Judge|"
    r"Superintendent|Professor|Teacher|Dean|Director|Coordinator|Advisor|Adviser|Therapist|Psychologist|"
    r"Tutor|Mentor|Captain|Capt\.|Lt\.|Lieutenant|Madam|Mister|Señor|Señora|Doctor) "
)
#: what a title starts with (searched first, to pick the few notes that need the whole pattern)
TITLE_HEAD = "(?:" + _HONORIFIC + "|" + _ROLE + ")"
# (a lower-case name after an honorific, "ms. wijtze" — but not after the verb "miss": "will miss
# your class", "miss speaking French")
_HONORIFIC_BEFORE_LOWER = r"\b(?:(?i:mr|mrs|ms|mx|dr|prof|sr|sra|srta)\.?|(?i:miss)\.|Miss) "
TITLE = (
    r"(?:" + _HONORIFIC + NAME_WORD + "|" + _HONORIFIC_BEFORE_LOWER
    + r"\p{Ll}[\p{L}\p{M}]{2,}(?:['’\-]\p{L}[\p{L}\p{M}]*)*|" + _ROLE + NAME_WORD + ")"
    + r"(?: (?:\p{Lu}\.? )?" + NAME_WORD + r")?"
)  # fmt: skip
#: honorifics and roles that are replaced with the name after them ("Ms. Taylor", "Coach Rivera")
TITLE_WORDS = frozenset(
    """mr mrs ms miss mx dr prof sr sra srta coach principal counselor counsellor officer deputy detective
    det sgt sergeant pastor rev reverend nurse judge superintendent professor teacher dean director
    coordinator advisor adviser therapist psychologist tutor mentor captain capt lt lieutenant madam
    mister señor señora doctor""".split()  # noqa: SIM905
)
#: "Maria's mom", "Ximena's dad": a name made plain by the relation after it
POSSESSIVE_TAIL = r"['’]s (?i:" + _RELATION + r")\b"
POSSESSIVE_RELATION = NAME_WORD + POSSESSIVE_TAIL
#: relation and title words that follow a name context without being a name ("called Mom", "met with
#: Principal"); also pronouns, articles and words that start a clause
NOT_A_NAME = frozenset(
    (
        _RELATION.replace(r"case ?worker", "caseworker").replace("\\", "")
        + "|mr|mrs|ms|miss|dr|coach|principal|counselor|counsellor|teacher|nurse|staff|team|office|"
        "admin|administration|registrar|front|desk|school|district|everyone|all|both|them|him|her|his|"
        "hers|me|my|mine|us|we|you|your|they|their|it|its|i|the|a|an|and|or|but|to|at|on|in|for|of|"
        "about|regarding|re|today|tomorrow|yesterday|again|back|later|home|work|class|period|"
        "student|students|family|families|"
        "sir|madam|maam|ma'am|folks|guys|all|team|friend|friends|someone|somebody|anyone|nobody|no|yes|"
        "not|unknown|na|n/a|none|tbd|pending|student's|child|kid|son|daughter|boy|girl|myself|himself|"
        "herself|themselves|again|briefly|today|there|here|that|this|these|those|who|what|when|where|why|"
        "how|if|so|is|was|are|were|be|been|have|has|had|would|could|should|about|after|before"
    ).split("|")
)
