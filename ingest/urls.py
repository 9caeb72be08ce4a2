from django.urls import path

from ingest import views
from ingest.anomaly import views as anomaly_views

app_name = "ingest"

urlpatterns = [
    path("sources/", views.source_list, name="sources"),
    path("sources/new/", views.source_create, name="source_create"),
    path("usage/", views.usage, name="usage"),
    path("baselines/", anomaly_views.baseline_list, name="baselines"),
    # One principal's (or instance's) baseline by its id: the list finds it by ARN (?q=), and ids
    # keep account numbers out of URLs that error pages echo back.
    path("baselines/<int:pk>/", anomaly_views.baseline_detail, name="baseline"),
]
