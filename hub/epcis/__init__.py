"""EPCIS 2.0 and GS1 Digital Link for partners.

A pure core (no database, no network): ``identifiers`` (EPC URIs and Digital Link URIs ↔
the hub's codes), ``document`` (JSON-LD documents in and out, checked against GS1's JSON
schema), ``mapping`` (which lifecycle step an EPCIS event makes, and hub events as EPCIS),
``query`` (the standard query parameters and page tokens), ``links`` (Digital Link link
sets). ``store`` is the adapter that applies captured events through the lifecycle gate
(``hub.domain.gate``) and answers queries from the database.
"""
