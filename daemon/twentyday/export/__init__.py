"""Exports: records handed to someone outside the archive, accounted for and encrypted.

``twentyday export`` selects records (ids, or the search filters), accounts for the disclosure
(5 U.S.C. 552a(c): when, what, why, to whom and their address, which records and how many)
before anything is decrypted, writes them in one of :data:`~twentyday.export.build.FORMATS`
with the dissemination notice, and seals the result so the recipient opens it with a standard
tool: an AES-256 zip (WinZip AE-2) for a passphrase, or age for a public key
(:mod:`twentyday.export.seal`). :mod:`build` is the order of it all, :mod:`html` the transcripts,
:mod:`nara` the bag and NARA's metadata file. The package sits beside the report, above the
store (it opens records only through :func:`twentyday.store.search.disclose_records`); only
the CLI imports it. See docs/ARCHITECTURE.md, "Exports".
"""
