"""acquire stage: EMDB/PDB entries -> ``{resources}/archive/{entry}/`` + entry tables.

Modules: ``records`` (entry table, ids, record fields), ``emdb`` (header XML and
search), ``download`` (verified, atomic, retried transfers), ``simulate``
(maps from bundled structures), ``stage`` (one entry -> record.json; tables).
"""
