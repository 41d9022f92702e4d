"""The analysts' SQL endpoint: Spark's Thrift JDBC/ODBC server over the hitcast Delta tables, and its views.

- :mod:`hitcast.sql.server`: start and stop the server (``make sql-server``, ``make sql-server-stop``);
- :mod:`hitcast.sql.register`: register the tables by location and (re)create the views, idempotently;
- :mod:`hitcast.sql.views`: the view files in ``views/`` (one ``SELECT`` each, with a comment);
- :mod:`hitcast.sql.client`: connect from Python (impyla) and read query results into pandas.
"""
