"""PACS and DICOMweb: remote nodes, query / retrieve / send, MedView's storage SCP and the
local study database. Qt-free; above io (files are written with io.workspace) and below demo,
ai and everything that shows or trains (docs/pacs.md)."""
