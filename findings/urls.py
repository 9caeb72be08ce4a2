from django.urls import path

from findings import views

app_name = "findings"

urlpatterns = [
    path("", views.finding_list, name="list"),
    path("poll/", views.finding_poll, name="poll"),
    path("summary/", views.finding_summary, name="summary"),
    path("archive/", views.findings_archive, name="archive"),
    path("samples/", views.findings_samples, name="samples"),
    path("f/<str:finding_id>/", views.finding_detail, name="detail"),
    path("f/<str:finding_id>/feedback/", views.finding_feedback, name="feedback"),
    path("filters/", views.filter_list, name="filters"),
    path("filters/new/", views.filter_edit, name="filter_new"),
    path("filters/preview/", views.filter_preview, name="filter_preview"),
    path("filters/<int:pk>/", views.filter_edit, name="filter_edit"),
    path("filters/<int:pk>/delete/", views.filter_delete, name="filter_delete"),
    path("proposals/<int:pk>/decide/", views.proposal_decide, name="proposal_decide"),
    path("destinations/", views.destination_list, name="destinations"),
    path("destinations/<int:pk>/", views.destination_detail, name="destination"),
    path("destinations/<int:pk>/test/", views.destination_test, name="destination_test"),
    path("destinations/<int:pk>/delete/", views.destination_delete, name="destination_delete"),
]
