from django_filters import rest_framework as filters

from tokens.models import Token


class TokenFilterSet(filters.FilterSet):
    type = filters.ChoiceFilter(choices=Token.Type.choices)
    identifier = filters.CharFilter(max_length=255)

    class Meta:
        model = Token
        fields = ("type", "identifier")
