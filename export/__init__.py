"""The nightly summaries: pure tables (``tables``, ``cells``), charts, the page, the writer of the
dated folder, the facts read into pandas (``source``) and the run that ties them (``run``). The only
package that imports pandas and matplotlib."""
