"""phonenumbers, trimmed: presidio's phone recognizer needs the numbering-plan metadata
(``phonenumbers.data``, ``phonenumbers.shortdata``; loaded by region through dynamic imports) but not
the geocoder (40 MB of place names), carrier or time-zone tables."""

from PyInstaller.utils.hooks import collect_submodules

LEFT_OUT = ("phonenumbers.geodata", "phonenumbers.carrierdata", "phonenumbers.tzdata")

hiddenimports = collect_submodules("phonenumbers", filter=lambda name: not name.startswith(LEFT_OUT))
