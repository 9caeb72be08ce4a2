from django.urls import path

from ingest import views

app_name = "ingest"

urlpatterns = [
    path("sources/", views.source_list, name="sources"),
    path("sources/new/", views.source_create, name="source_create"),
    path("usage/", views.usage, name="usage"),
]
