from django.urls import path

from tokens import views

urlpatterns = [
    path("oauth/callback", views.oauth_callback, name="oauth-callback"),
]
