"""Real apps shared by the tests, one folder for all of them.

Imported by the tests and named by ``"module:attr"`` strings that a subprocess loads
(``wsgi2asgi serve tests.apps.lifecycle:held``):

- ``flask_app``, ``django_app``: Flask and Django apps exercising what a WSGI server must get
  right; ``starlette_app`` the same for ``asgi_to_wsgi``, and ``asgi_under_gunicorn`` serves it
  under gunicorn;
- ``interfaces``: an app of every interface (WSGI, ASGI 3, ASGI 2) and the one it is detected as;
- ``serve_flask``, ``lifecycle``, ``mistakes``: apps for ``wsgi2asgi serve`` (its life cycle
  and its load checks);
- ``nested_example``: the example project mounted two levels deep;
- ``flask_site``, ``starlette_site``, ``django_site``, ``tree``, ``odd_site``, ``broken``,
  ``blocking_apps``, ``shadow_apps``, ``dashboard_site``: the migration tools' apps (inventory,
  blocking detector, shadow traffic, dashboard).
"""
