from django.urls import path

from intel import views

app_name = "intel"

urlpatterns = [
    path("", views.intel_list, name="list"),
    path("new/", views.intel_create, name="create"),
    path("check/", views.intel_check, name="check"),
    path("<str:set_id>/", views.intel_detail, name="detail"),
    path("<str:set_id>/action/", views.intel_action, name="action"),
    path("<str:set_id>/replace/", views.intel_replace, name="replace"),
]
