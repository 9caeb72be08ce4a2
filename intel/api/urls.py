from django.urls import path

from intel.api import views

urlpatterns = [
    path("intel/detectors/<str:detector_id>/check/", views.IndicatorCheckApi.as_view(), name="api-intel-check"),
    path("intel/detectors/<str:detector_id>/<str:collection>/", views.IntelSetListApi.as_view(), name="api-intel-sets"),
    path("intel/detectors/<str:detector_id>/<str:collection>/<str:set_id>/", views.IntelSetDetailApi.as_view(),
         name="api-intel-set"),
]
