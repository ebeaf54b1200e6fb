import pytest
from servers.models import McpServer
from tests.factories import McpServerFactory

@pytest.mark.django_db
@pytest.mark.parametrize("i", range(6))
def test_probe(i):
    assert McpServer.objects.count() == 0
    McpServerFactory()
