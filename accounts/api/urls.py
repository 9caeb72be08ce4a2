from django.urls import path

from accounts.api import views

urlpatterns = [
    path("accounts/", views.AccountListApi.as_view(), name="api-accounts"),
    path("accounts/<str:aws_account_id>/", views.AccountDetailApi.as_view(), name="api-account"),
    path("accounts/<str:aws_account_id>/members/", views.MemberListApi.as_view(), name="api-members"),
    path("accounts/<str:aws_account_id>/members/<str:operation>/", views.MemberOperationApi.as_view(),
         name="api-member-operation"),
    path("accounts/<str:aws_account_id>/invitations/", views.InvitationListApi.as_view(), name="api-invitations"),
    path("accounts/<str:aws_account_id>/invitations/accept/", views.InvitationAcceptApi.as_view(),
         name="api-invitation-accept"),
    path("accounts/<str:aws_account_id>/invitations/decline/", views.InvitationDeclineApi.as_view(),
         name="api-invitation-decline"),
    path("accounts/<str:aws_account_id>/invitations/delete/", views.InvitationDeleteApi.as_view(),
         name="api-invitation-delete"),
    path("accounts/<str:aws_account_id>/administrator/", views.AdministratorApi.as_view(), name="api-administrator"),
    path("accounts/<str:aws_account_id>/audit/", views.AuditListApi.as_view(), name="api-audit"),
    path("detectors/", views.DetectorListApi.as_view(), name="api-detectors"),
    path("detectors/<str:detector_id>/", views.DetectorDetailApi.as_view(), name="api-detector"),
    path("detectors/<str:detector_id>/suspend/", views.DetectorSuspendApi.as_view(), name="api-detector-suspend"),
    path("detectors/<str:detector_id>/resume/", views.DetectorResumeApi.as_view(), name="api-detector-resume"),
]
