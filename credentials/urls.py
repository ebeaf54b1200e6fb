from django.urls import path

from credentials import views

urlpatterns = [
    path("oauth/callback", views.oauth_callback, name="oauth-callback"),
]
