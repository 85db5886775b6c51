"""SuiteTalk SOAP (2023_2) at /services/NetSuitePort_2023_2: get, getList, add, addList,
update, updateList, upsert, upsertList, search and searchMoreWithId.

Requests are parsed with a hardened lxml parser (no DTD, no entities, no network) and read the
way NetSuite reads them: records arrive as ``<record xsi:type="...">`` and each is checked and
answered on its own (a string over its length is EXCEEDED_MAX_FIELD_LENGTH, a taken externalId
on add DUP_ENTITY). Failures of the whole request are SOAP faults (HTTP 500): NetSuite's fault
element, code and message, or, for XML that does not parse or an element the schema lacks, the
SAX fault NetSuite's Axis stack answers, with nothing of the request written.

By concern: ``envelope`` (namespaces, the parser, faults, the reply), ``record_xml`` (records
parsed from and written to XML), ``search`` (search and searchMoreWithId) and ``service`` (the
requests: authentication and every operation). Like all of ``sandbox``, it imports nothing of
finsync's clients (``connectors``, ``mappings``) or anything above them.
"""
