from django.urls import path

from findings.api import views

urlpatterns = [
    path("findings/", views.FindingListApi.as_view(), name="api-findings"),
    path("findings/archive/", views.FindingArchiveApi.as_view(), name="api-findings-archive"),
    path("findings/unarchive/", views.FindingUnarchiveApi.as_view(), name="api-findings-unarchive"),
    path("findings/feedback/", views.FindingFeedbackApi.as_view(), name="api-findings-feedback"),
    path("findings/statistics/", views.FindingStatisticsApi.as_view(), name="api-findings-statistics"),
    path("findings/export/<str:fmt>/", views.FindingExportApi.as_view(), name="api-findings-export"),
    path("findings/filters/", views.FilterListApi.as_view(), name="api-finding-filters"),
    path("findings/filters/preview/", views.FilterPreviewApi.as_view(), name="api-finding-filter-preview"),
    path("findings/filters/<int:pk>/", views.FilterDetailApi.as_view(), name="api-finding-filter"),
    path("findings/destinations/", views.DestinationListApi.as_view(), name="api-finding-destinations"),
    path("findings/destinations/<int:pk>/", views.DestinationDetailApi.as_view(), name="api-finding-destination"),
    path("findings/destinations/<int:pk>/test/", views.DestinationTestApi.as_view(),
         name="api-finding-destination-test"),
    path("findings/destinations/<int:pk>/deliveries/", views.DeliveryListApi.as_view(),
         name="api-finding-deliveries"),
    path("findings/<str:finding_id>/", views.FindingDetailApi.as_view(), name="api-finding"),
]
