"""Countries of the sandbox's addresses: ISO 3166 alpha-2 codes and SuiteTalk's Country enum.

SOAP spells a country as a value of the 2023_2 ``Country`` enumeration (``_unitedStates``);
the REST record API as its ISO code (``US``). The sandbox stores the ISO code, so a customer
written over either transport is held the same way. It knows the countries below, a subset of
NetSuite's ~250, written out here on purpose rather than derived (a derivation shared with a
client would agree with its bugs); a country outside the list is refused as an invalid value.
Several enum names differ from the common English name (``_koreaTheRepublicOf``,
``_hongKong``, ``_vietNam``); they are included so clients are tested on them.
"""

from __future__ import annotations

#: ISO 3166 alpha-2 code -> SuiteTalk 2023_2 Country enumeration value.
ISO_TO_ENUM: dict[str, str] = {
    "AE": "_unitedArabEmirates",
    "AR": "_argentina",
    "AT": "_austria",
    "AU": "_australia",
    "BE": "_belgium",
    "BH": "_bahrain",
    "BR": "_brazil",
    "CA": "_canada",
    "CH": "_switzerland",
    "CL": "_chile",
    "CN": "_china",
    "CO": "_colombia",
    "CZ": "_czechia",
    "DE": "_germany",
    "DK": "_denmark",
    "ES": "_spain",
    "FI": "_finland",
    "FR": "_france",
    "GB": "_unitedKingdom",
    "HK": "_hongKong",
    "IE": "_ireland",
    "IL": "_israel",
    "IN": "_india",
    "IT": "_italy",
    "JP": "_japan",
    "KR": "_koreaTheRepublicOf",
    "KW": "_kuwait",
    "LU": "_luxembourg",
    "MX": "_mexico",
    "NL": "_netherlands",
    "NO": "_norway",
    "NZ": "_newZealand",
    "PL": "_poland",
    "PT": "_portugal",
    "QA": "_qatar",
    "SA": "_saudiArabia",
    "SE": "_sweden",
    "SG": "_singapore",
    "TW": "_taiwan",
    "US": "_unitedStates",
    "VN": "_vietNam",
    "ZA": "_southAfrica",
}
#: SuiteTalk Country enumeration value -> ISO code.
ENUM_TO_ISO: dict[str, str] = {enum: iso for iso, enum in ISO_TO_ENUM.items()}
