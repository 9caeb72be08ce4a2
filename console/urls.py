from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from console import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("findings/", include("findings.urls")),
    path("ingest/", include("ingest.urls")),
    path("api/", include("accounts.api.urls")),
    path("api/", include("findings.api.urls")),
    path("intel/", include("intel.urls")),
    path("api/", include("intel.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    # GuardDuty's own REST-JSON API for boto3 / the AWS CLI: endpoint_url = <site>/gd
    path("gd/", include("gdapi.urls")),
]
