from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.account_list, name="list"),
    path("new/", views.account_create, name="create"),
    path("members/add/", views.member_add, name="member_add"),
    path("members/action/", views.member_action, name="member_action"),
    path("invitations/", views.invitation_list, name="invitations"),
    path("invitations/respond/", views.invitation_respond, name="invitation_respond"),
    path("detectors/", views.detector_list, name="detectors"),
    path("detectors/<str:detector_id>/", views.detector_detail, name="detector"),
    path("settings/", views.account_settings, name="settings"),
    path("switch/", views.switch, name="switch"),
]
