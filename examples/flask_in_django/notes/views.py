"""Views of the notes app: a page that lists notes, a form that adds one, and an async view.

Served by ``django_app()``, each sync view runs on one worker thread from the first middleware
to the response's end, as under gunicorn; the async view runs on the server's event loop.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from examples.flask_in_django.notes.models import Note


def home(request: HttpRequest) -> HttpResponse:
    """List the notes, with links to the Flask app and the API next door."""
    return render(request, "notes/home.html", {"notes": Note.objects.all()[:20]})


@require_POST
def add(request: HttpRequest) -> HttpResponse:
    """Add a note from the form (CSRF-protected), then go back home."""
    text = request.POST.get("text", "").strip()
    if text:
        Note.objects.create(text=text[:200])
    return HttpResponseRedirect(reverse("notes:home"))


async def latest(request: HttpRequest) -> JsonResponse:
    """The newest notes as JSON, from an async view: the loop serves others while it waits."""
    count = await Note.objects.acount()
    texts = [note.text async for note in Note.objects.all()[:5]]
    return JsonResponse({"count": count, "latest": texts})
