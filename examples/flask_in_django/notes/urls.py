"""URLs of the notes app."""

from __future__ import annotations

from django.urls import path

from examples.flask_in_django.notes import views

app_name = "notes"
urlpatterns = [
    path("", views.home, name="home"),
    path("notes/add/", views.add, name="add"),
    path("notes/latest/", views.latest, name="latest"),
]
