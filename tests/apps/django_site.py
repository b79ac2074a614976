"""A Django project in one module: settings, views and urlpatterns (``ROOT_URLCONF`` is here).

Importing it configures Django, so tests import it only in a subprocess.
"""

from __future__ import annotations

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views import View

settings.configure(
    DEBUG=False,
    SECRET_KEY="inventory-tests",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=[],
)
django.setup(set_prefix=False)


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("index")


async def feed(request: HttpRequest) -> HttpResponse:
    return HttpResponse("feed")


def article(request: HttpRequest, year: str) -> HttpResponse:
    return HttpResponse(year)


class Comments(View):
    http_method_names = ["get", "post", "head", "options"]

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("comments")

    async def post(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("posted")


blog_patterns = (
    [
        path("feed/", feed, name="feed"),
        re_path(r"^(?P<year>[0-9]{4})/$", article, name="article"),
        path("comments/", Comments.as_view(), name="comments"),
    ],
    "blog",
)

urlpatterns = [
    path("", index, name="index"),
    path("blog/", include(blog_patterns, namespace="blog")),
    path("raw/", index),
]


def application() -> object:
    """The factory ``wsgi2asgi routes`` loads: Django's ASGI handler, as the adapter builds it."""
    from django.core.handlers.asgi import ASGIHandler

    return ASGIHandler()


def mounted() -> object:
    """The project through both adapter interfaces, mounted by our router under prefixes."""
    from adapters.django import django_app
    from wsgi2asgi.routing import Mount, Router

    return Router(
        [
            Mount("/site", django_app(interface="asgi")),
            Mount("/old", django_app(interface="wsgi")),
        ]
    )
